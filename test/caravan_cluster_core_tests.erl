%%% The cluster core (caravan_cluster_core) against random event sequences:
%%% a PropEr stateful property whose model is the core itself plus the
%%% world around it (which nodes are connected, which dials are in flight,
%%% which timers are armed). Events are drawn from what that world can
%%% produce: listings from three sources, source errors, nodeups and
%%% nodedowns, results of dials in flight, departure notices, firings of
%%% armed timers. The invariants of the core's module doc are checked after
%%% every step, with two more: the retry arithmetic (each retry delay the
%%% core arms lies in [retry_min, retry_max] and doubles with each failed
%%% retry until it reaches the cap; the shell adds up to a quarter of
%%% jitter on top), and "a node that announced its departure is not
%%% dialled while it stays departed". The policies also vary what a
%%% leave's scope rests on (global:disconnect/0 there, global preventing
%%% overlapping partitions, erlang's disconnect MFA), and every `{leave, Ns,
%%% Scope}' must have the scope the model expects; dial results include
%%% `already' (the list_nodes MFA had the node: not dialled, a connection).
%%% Then the regression cases: the
%%% sequences of issue 11 and the counterexamples PropEr shrank while the
%%% core was written.
-module(caravan_cluster_core_tests).

-include_lib("eunit/include/eunit.hrl").

-export([initial_state/0, command/1, precondition/2, postcondition/3, next_state/3]).
-export([step/1]).

-define(SELF, n0).
-define(LISTABLE, [n0, n1, n2, n3, n4]).
-define(FOREIGN, [f1, f2]).
%% Every node but this one. Parenthesised: `--` and `++` are
%% right-associative, and without them the foreign nodes were subtracted
%% too, so no nodeup or nodedown of a foreign node was ever generated.
-define(PEERS, ((?LISTABLE -- [?SELF]) ++ ?FOREIGN)).
-define(SOURCES, [a, b, c]).
%% 8 policies x 250 = 2,000 generated sequences per run.
-define(RUNS, 250).
%% Two doublings reach the cap, which is not a power of two times the floor:
%% 10, 20, 30, 30...
-define(RETRY_MIN, 10).
-define(RETRY_MAX, 30).

%%%---------------------------------------------------------------------------
%%% EUnit entry points
%%%---------------------------------------------------------------------------

properties_test_() ->
    [{timeout, 300,
      {lists:flatten(io_lib:format("core invariants, prune=~p self_listed=~p "
                                   "global_leave=~p, ~b sequences",
                                   [Prune, SelfListed, Global, ?RUNS])),
       fun() ->
               %% long_result: a failure shows the shrunk sequence.
               ?assertEqual(true, proper:quickcheck(prop_invariants(Prune, SelfListed, Global),
                                                    [{numtests, ?RUNS}, {to_file, user},
                                                     long_result]))
       end}}
     || Prune <- [true, false], SelfListed <- [true, false], Global <- [true, false]].

%%%---------------------------------------------------------------------------
%%% The property
%%%---------------------------------------------------------------------------

prop_invariants(Prune, SelfListed, Global) ->
    %% Debian's erlang-proper ships no proper.hrl: its macros spelled out.
    proper:forall(
      proper_statem:commands(?MODULE, initial(Prune, SelfListed, Global)),
      fun(Cmds) ->
              {_History, State, Result} = proper_statem:run_commands(?MODULE, Cmds),
              proper:whenfail(
                fun() -> io:format(user, "~nsequence: ~p~nstate: ~p~nresult: ~p~n",
                                   [[E || {set, _, {call, _, step, [E]}} <- Cmds],
                                    State, Result])
                end,
                fun() -> Result =:= ok end)
      end).

initial(Prune, SelfListed, Global) ->
    Opts = (options(Prune, SelfListed))#{leave_facts => facts(Global)},
    #{core => caravan_cluster_core:new(Opts), prune => Prune, global => Global,
      net => [], dials => [],
      timers => [], delays => #{}, origins => #{}, ever => [], last_actions => []}.

options(Prune, SelfListed) ->
    #{self => ?SELF, self_listed => SelfListed, prune => Prune, poll_interval => 100,
      prune_grace => 300, retry_min => ?RETRY_MIN, retry_max => ?RETRY_MAX}.

%% Global: every fact a global leave needs holds. Else one fails
%% (prevent_overlapping_partitions off; leave_scope_test tries each).
facts(true) ->
    #{global_disconnect => true, pop => true, default_disconnect => true};
facts(false) ->
    #{global_disconnect => true, pop => false, default_disconnect => true}.

%% The system under test is the model itself (the core is pure): a step
%% only needs to exist for proper_statem to run.
step(_Event) -> ok.

peers_include_the_foreign_nodes_test() ->
    ?assertEqual(?FOREIGN, ?PEERS -- ?LISTABLE).

initial_state() ->
    initial(true, true, true).

command(#{net := Net, dials := Dials, timers := Timers}) ->
    Always = [{6, {listing, proper_types:oneof(?SOURCES), proper_types:list(proper_types:oneof(?LISTABLE))}},
              {1, {source_error, proper_types:oneof(?SOURCES), timeout}},
              {2, {nodeup, proper_types:oneof(?PEERS)}},
              {1, {departing, proper_types:oneof(?LISTABLE ++ ?FOREIGN)}},
              {1, {nodeup, ?SELF}},
              {1, {nodedown, proper_types:oneof(?PEERS)}}],
    Down = [{2, {nodedown, proper_types:oneof(Net)}} || Net =/= []],
    Results = [{4, {connect_result, proper_types:oneof(Dials),
                    proper_types:oneof([true, false, already])}} || Dials =/= []],
    Fire = [{4, {timer, proper_types:oneof(Timers)}} || Timers =/= []],
    {call, ?MODULE, step, [proper_types:frequency(Always ++ Down ++ Results ++ Fire)]}.

precondition(#{dials := Dials, timers := Timers}, {call, _, step, [Event]}) ->
    case Event of
        {connect_result, N, _} -> lists:member(N, Dials);
        {timer, T} -> lists:member(T, Timers);
        {nodedown, _N} -> true;
        _ -> true
    end.

next_state(S, _Result, {call, _, step, [Event]}) ->
    {S1, _Actions} = apply_event(Event, S),
    S1.

postcondition(S, {call, _, step, [Event]}, _Result) ->
    {S1, Actions} = apply_event(Event, S),
    case check(S, Event, S1, Actions) of
        [] -> true;
        Broken ->
            io:format(user, "~nbroken after ~p: ~p~nactions: ~p~n", [Event, Broken, Actions]),
            false
    end.

%% The core's step, then the world's response to its actions.
apply_event(Event, #{core := Core} = S0) ->
    {Core1, Actions} = caravan_cluster_core:handle(Event, Core),
    S = world(Event, S0#{core := Core1}),
    S1 = lists:foldl(fun action/2, S, Actions),
    %% A leave (this node going out) ends every failure streak, even of a
    %% node still listed whose dial stays in flight through it.
    S2 = case {caravan_cluster_core:participation(Core),
               caravan_cluster_core:participation(Core1)} of
             {Before, out} when Before =/= out -> S1#{origins := #{}};
             _ -> S1
         end,
    {track_retries(Event, Actions, S2), Actions}.

%% The model of the retry arithmetic. delays: each retry timer's delay and
%% why it was armed (a failed dial, or a lost link). origins: what the dial
%% in flight to a node will wait if it fails, by where the dial came from:
%% `fresh' (the first of a streak: retry_min) or the retry timer that fired
%% it, {Ms, Why}. A streak ends when the node is anything but connecting or
%% retrying (connected, departed, leaving...): the core counts failures
%% from 0 again there.
track_retries(Event, Actions, #{core := Core, delays := D0, origins := O0} = S) ->
    D1 = maps:merge(D0, maps:from_list([{T, {Ms, armed_by(Event)}}
                                        || {arm, Ms, {retry, _, _} = T} <- Actions])),
    O1 = lists:foldl(
           fun({connect, N}, O) ->
                   case Event of
                       {timer, {retry, N, _} = T} -> O#{N => maps:get(T, D1)};
                       _ -> O#{N => fresh}
                   end;
              (_, O) ->
                   O
           end, O0, Actions),
    Nodes = caravan_cluster_core:nodes(Core),
    O2 = maps:filter(fun(N, _) ->
                             lists:member(maps:get(N, Nodes, gone), [connecting, retrying])
                     end, O1),
    S#{delays := D1, origins := O2}.

armed_by({connect_result, _, false}) -> failed_dial;
armed_by({nodedown, _}) -> lost_link;
armed_by(Event) -> {unexpected, Event}.

%% The delay a retry armed after Event should have: a lost link is retried
%% after retry_min; a failed dial after retry_min if it was the first of
%% its streak, else after twice the delay before it, up to retry_max. A dial
%% fired by a lost link's retry starts the count over (the core counts
%% failed dials, and that retry followed none): its failure waits
%% retry_min again.
expected_delay({nodedown, _}, _Origins) ->
    ?RETRY_MIN;
expected_delay({connect_result, N, false}, Origins) ->
    case maps:get(N, Origins, fresh) of
        fresh -> ?RETRY_MIN;
        {_, lost_link} -> ?RETRY_MIN;
        {Ms, failed_dial} -> min(?RETRY_MAX, 2 * Ms)
    end;
expected_delay(Event, _Origins) ->
    {no_retry_expected_after, Event}.

world({listing, _, Nodes}, #{ever := Ever} = S) ->
    S#{ever := lists:usort(Ever ++ Nodes)};
world({nodeup, ?SELF}, S) ->
    S; % net_kernel never reports this node itself
world({nodeup, N}, #{net := Net} = S) ->
    S#{net := lists:usort([N | Net])};
world({nodedown, N}, #{net := Net} = S) ->
    S#{net := Net -- [N]};
world({connect_result, N, Ok}, #{net := Net, dials := D} = S) when Ok =:= true;
                                                                   Ok =:= already ->
    S#{net := lists:usort([N | Net]), dials := D -- [N]};
world({connect_result, N, false}, #{dials := D} = S) ->
    S#{dials := D -- [N]};
world({timer, T}, #{timers := Ts} = S) ->
    S#{timers := Ts -- [T]};
world(_, S) ->
    S.

action({connect, N}, #{dials := D} = S) -> S#{dials := [N | D]}; % duplicates caught by check
action({disconnect, N}, #{net := Net} = S) -> S#{net := Net -- [N]};
action({leave, Ns, _Scope}, #{net := Net} = S) -> S#{net := Net -- Ns};
action({arm, _Ms, T}, #{timers := Ts} = S) -> S#{timers := [T | Ts]};
action({log, _, _}, S) -> S.

%%%---------------------------------------------------------------------------
%%% Invariants (the core's module doc)
%%%---------------------------------------------------------------------------

check(S0, Event, #{core := Core, net := Net, dials := Dials, timers := Timers,
                   ever := Ever, prune := Prune, global := Global}, Actions) ->
    Listed = caravan_cluster_core:listed(Core) -- [?SELF],
    Nodes = caravan_cluster_core:nodes(Core),
    Takes = caravan_cluster_core:participation(Core) =/= out,
    Connects = [N || {connect, N} <- Actions],
    Up = fun(N) -> lists:member(N, Net) end,
    Broken =
        %% 1. one dial in flight per node
        [{second_dial, N} || N <- Connects, lists:member(N, maps:get(dials, S0))]
        ++ [{dials_twice, Connects} || length(Connects) =/= length(lists:usort(Connects))]
        ++ [{dial_unknown, N} || N <- Dials, not is_map_key(N, Nodes)]
        %% 2. listed, taking part: dialled within one retry step
        ++ [{not_dialled, N, maps:get(N, Nodes, unknown)}
            || Takes, N <- Listed, not Up(N),
               not lists:member(maps:get(N, Nodes, unknown), [connecting, retrying, departed])]
        ++ [{no_retry_timer, N} || {N, retrying} <- maps:to_list(Nodes),
                                   not lists:any(fun({retry, M, _}) -> M =:= N;
                                                    (_) -> false end, Timers)]
        ++ [{connecting_without_dial, N} || {N, connecting} <- maps:to_list(Nodes),
                                            not lists:member(N, Dials)]
        ++ [{connected_not_member, N, maps:get(N, Nodes, unknown)}
            || Takes, N <- Listed, Up(N),
               not lists:member(maps:get(N, Nodes, unknown), [connected, departed])]
        %% 3. nothing unlisted, never listed, or with prune off is disconnected
        ++ [{bad_disconnect, N} || {disconnect, N} <- Actions,
                                   not Prune orelse lists:member(N, Listed)
                                       orelse not lists:member(N, Ever)]
        ++ [{bad_leave, Event, Ns} || {leave, Ns, _} <- Actions, Ns -- Ever =/= [] orelse not Prune]
        %% A leave drops through global only with every fact for it, and
        %% never for nobody.
        ++ [{bad_leave_scope, Event, Ns, Scope}
            || {leave, Ns, Scope} <- Actions,
               Scope =/= case Global andalso Ns =/= [] of
                             true -> global;
                             false -> members
                         end]
        %% 4. bounded records; 5. no dialling of unlisted nodes
        ++ [{unbounded, N, St} || {N, St} <- maps:to_list(Nodes), not lists:member(N, Listed),
                                  not bounded(N, St, Up(N), Timers, Dials)]
        ++ [{unlisted_dialled, N, St} || {N, St} <- maps:to_list(Nodes),
                                         lists:member(St, [retrying, connecting]),
                                         not lists:member(N, Listed)]
        %% The core's view of the links is the world's.
        ++ [{up_unknown, N} || N <- Net, not is_map_key(N, Nodes)]
        ++ [{foreign_down, N} || {N, foreign} <- maps:to_list(Nodes), not Up(N)]
        ++ [{member_not_up, N} || N <- caravan_cluster_core:members(Core), N =/= ?SELF,
                                  not Up(N)]
        %% 6. retry delays: within [retry_min, retry_max], doubling from
        %% retry_min with each failed retry until they reach the cap
        ++ [{retry_delay_out_of_range, N, Ms} || {arm, Ms, {retry, N, _}} <- Actions,
                                                 Ms < ?RETRY_MIN orelse Ms > ?RETRY_MAX]
        ++ [{retry_delay, N, Ms, expected, expected_delay(Event, maps:get(origins, S0))}
            || {arm, Ms, {retry, N, _}} <- Actions,
               Ms =/= expected_delay(Event, maps:get(origins, S0))]
        %% 7. a node that announced its departure is not dialled while it
        %% stays departed (nothing that ends a departure dials at once)
        ++ [{departed_dialled, N, Event} || {connect, N} <- Actions,
                                            maps:get(N, caravan_cluster_core:nodes(
                                                          maps:get(core, S0)), gone)
                                                =:= departed],
    Broken.

bounded(_N, foreign, true, _Timers, _Dials) -> true;
bounded(N, leaving, _Up, Timers, Dials) ->
    lists:member(N, Dials) orelse
        lists:any(fun({prune, M, _}) -> M =:= N; (_) -> false end, Timers);
bounded(_, _, _, _, _) -> false.

%%%---------------------------------------------------------------------------
%%% Regression cases
%%%---------------------------------------------------------------------------

%% Runs Events through a core (self_listed off unless given) and returns
%% the core and every action.
run(Events) -> run(Events, #{}).

run(Events, Policy) ->
    Opts = maps:merge(options(true, false), Policy),
    lists:foldl(fun(E, {C, As}) ->
                        {C1, A} = caravan_cluster_core:handle(E, C),
                        {C1, As ++ A}
                end, {caravan_cluster_core:new(Opts), []}, Events).

timers_of(Actions) -> [T || {arm, _, T} <- Actions].

%% Issue 11, bug 1: listed but unreachable, dropped from the listing, listed
%% again: the stale retry must not keep it from being dialled.
stale_retry_test() ->
    {C1, A1} = run([{listing, a, [n1]}, {connect_result, n1, false}]),
    [Retry] = [T || {retry, _, _} = T <- timers_of(A1)],
    {C2, _} = caravan_cluster_core:handle({listing, a, []}, C1),
    {C3, A3} = caravan_cluster_core:handle({listing, a, [n1]}, C2),
    ?assertEqual([{connect, n1}], [A || {connect, _} = A <- A3]),
    {C4, A4} = caravan_cluster_core:handle({timer, Retry}, C3),
    ?assertEqual([], [A || {connect, _} = A <- A4]), % stale, and a dial is in flight
    {C5, _} = caravan_cluster_core:handle({connect_result, n1, true}, C4),
    ?assertEqual([n1], caravan_cluster_core:members(C5)),
    ?assertMatch(#{pending_retries := 0}, caravan_cluster_core:describe(C5)).

%% Bug 4: one listing without this node is not enough to leave.
absence_is_confirmed_test() ->
    Self = #{self_listed => true},
    {C1, _} = run([{listing, a, [n0, n1]}, {connect_result, n1, true}], Self),
    {C2, A2} = caravan_cluster_core:handle({listing, a, [n1]}, C1),
    ?assertEqual([], [A || {leave, _, _} = A <- A2]),
    ?assertEqual(absent, caravan_cluster_core:participation(C2)),
    %% Back in the next listing: nothing happened.
    {C3, A3} = caravan_cluster_core:handle({listing, a, [n0, n1]}, C2),
    ?assertEqual([], [A || {leave, _, _} = A <- A3]),
    ?assertEqual(in, caravan_cluster_core:participation(C3)),
    %% Absent twice: it leaves.
    {C4, _} = caravan_cluster_core:handle({listing, a, [n1]}, C3),
    {_, A5} = caravan_cluster_core:handle({listing, a, [n1]}, C4),
    ?assertEqual([{leave, [n1], members}], [A || {leave, _, _} = A <- A5]),
    %% Or absent once, and the confirmation timer fires.
    {C6, A6} = caravan_cluster_core:handle({listing, a, [n1]}, C3),
    [Confirm] = [T || {confirm_absence, _} = T <- timers_of(A6)],
    {_, A7} = caravan_cluster_core:handle({timer, Confirm}, C6),
    ?assertEqual([{leave, [n1], members}], [A || {leave, _, _} = A <- A7]).

%% Bug 5: a dial in flight when the node is delisted, succeeding later, is
%% pruned after the grace; so is a delisted node that dials us.
late_links_are_pruned_test() ->
    {C1, A1} = run([{listing, a, [n1, n2]}, {connect_result, n2, false}]),
    ?assertEqual([{connect, n1}, {connect, n2}], lists:sort([A || {connect, _} = A <- A1])),
    {C2, A2} = caravan_cluster_core:handle({listing, a, []}, C1),
    {C3, _} = caravan_cluster_core:handle({connect_result, n1, true}, C2),
    {C4, _} = caravan_cluster_core:handle({nodeup, n2}, C3), % n2 dials us
    Prunes = [T || {prune, _, _} = T <- timers_of(A2)],
    {_, A5} = lists:foldl(fun(T, {C, As}) ->
                                  {C0, A} = caravan_cluster_core:handle({timer, T}, C),
                                  {C0, As ++ A}
                          end, {C4, []}, Prunes),
    ?assertEqual([{disconnect, n1}, {disconnect, n2}],
                 lists:sort([A || {disconnect, _} = A <- A5])).

%% Issue 14: prune => false is honoured; foreign nodes are never pruned.
prune_false_and_foreign_test() ->
    {C1, A1} = run([{nodeup, f1}, {listing, a, [n1]}, {connect_result, n1, true},
                    {listing, a, []}], #{prune => false}),
    {_, A2} = lists:foldl(fun(T, {C, As}) ->
                                  {C0, A} = caravan_cluster_core:handle({timer, T}, C),
                                  {C0, As ++ A}
                          end, {C1, []}, timers_of(A1)),
    ?assertEqual([], [A || {disconnect, _} = A <- A1 ++ A2]),
    {C3, A3} = run([{nodeup, f1}, {listing, a, [n1]}, {connect_result, n1, true},
                    {listing, a, []}]),
    ?assertEqual(foreign, caravan_cluster_core:node_state(f1, C3)),
    {_, A4} = lists:foldl(fun(T, {C, As}) ->
                                  {C0, A} = caravan_cluster_core:handle({timer, T}, C),
                                  {C0, As ++ A}
                          end, {C3, []}, timers_of(A3)),
    ?assertEqual([{disconnect, n1}], [A || {disconnect, _} = A <- A4]).

%% Shrunk by PropEr: n4's grace ran out while a dial was in flight, n4
%% dialled us, then our dial failed: n4 was kept, connected, with no timer
%% (never pruned, never forgotten).
dial_outlives_grace_test() ->
    {C1, A1} = run([{listing, a, [n0, n4]}, {listing, a, [n0]}], #{self_listed => true}),
    [Prune] = [T || {prune, n4, _} = T <- timers_of(A1)],
    {C2, A2} = lists:foldl(fun(E, {C, As}) ->
                                   {C0, A} = caravan_cluster_core:handle(E, C),
                                   {C0, As ++ A}
                           end, {C1, []},
                           [{timer, Prune}, {nodeup, n4}, {connect_result, n4, false}]),
    ?assertEqual(leaving, caravan_cluster_core:node_state(n4, C2)),
    [Again] = [T || {prune, n4, _} = T <- timers_of(A2)],
    {_, A3} = caravan_cluster_core:handle({timer, Again}, C2),
    ?assertEqual([{disconnect, n4}], [A || {disconnect, _} = A <- A3]).

%% The retry arithmetic on one streak, beside the property (which reaches
%% the cap in only some of its sequences): each failed dial of n1 is
%% retried after retry_min, then twice as long each time, up to retry_max.
retry_delays_double_to_the_cap_test() ->
    {C1, A1} = run([{listing, a, [n1]}, {connect_result, n1, false}]),
    Delays = retry_streak(C1, A1, 4),
    ?assertEqual([?RETRY_MIN, 2 * ?RETRY_MIN, ?RETRY_MAX, ?RETRY_MAX], Delays).

%% Found by the property: a dial in flight when this node leaves (its own
%% absence confirmed) ends the failure streak, as an unlisted node's does;
%% back in, its failure waits retry_min, not twice the last delay.
dial_in_flight_through_a_leave_starts_a_new_streak_test() ->
    Events = [{listing, a, [n0, n1]}, {connect_result, n1, false}],
    {C1, A1} = caravan_cluster_core:handle(
                 lists:last(Events),
                 element(1, lists:foldl(fun(E, {C, _}) -> caravan_cluster_core:handle(E, C) end,
                                        {caravan_cluster_core:new(options(false, true)), []},
                                        lists:droplast(Events)))),
    [{arm, _, Retry}] = [A || {arm, _, {retry, n1, _}} = A <- A1],
    {C2, _} = caravan_cluster_core:handle({timer, Retry}, C1), % dialling again
    {C3, A3} = caravan_cluster_core:handle({listing, a, [n1]}, C2),
    [{arm, _, Absence}] = [A || {arm, _, {confirm_absence, _}} = A <- A3],
    {C4, _} = caravan_cluster_core:handle({timer, Absence}, C3), % out: leaving
    {C5, _} = caravan_cluster_core:handle({listing, a, [n0, n1]}, C4), % in again
    {_, A6} = caravan_cluster_core:handle({connect_result, n1, false}, C5),
    ?assertMatch([{arm, ?RETRY_MIN, {retry, n1, _}}],
                 [A || {arm, _, {retry, n1, _}} = A <- A6]).

%% Found by the property (prune => false): the same when the node stays
%% listed through the leave, its dial still in flight: the dial's failure
%% waits retry_min.
dial_in_flight_through_a_listed_leave_starts_a_new_streak_test() ->
    Opts = options(false, true),
    C0 = caravan_cluster_core:new(Opts),
    {C1, _} = caravan_cluster_core:handle({listing, a, [n0, n1]}, C0),
    {C2, A2} = caravan_cluster_core:handle({connect_result, n1, false}, C1),
    [{arm, _, Retry}] = [A || {arm, _, {retry, n1, _}} = A <- A2],
    {C3, _} = caravan_cluster_core:handle({timer, Retry}, C2), % dialling again
    {C4, _} = caravan_cluster_core:handle({listing, b, [n1]}, C3),
    {C5, _} = caravan_cluster_core:handle({listing, a, [n1]}, C4),
    {C6, _} = caravan_cluster_core:handle({listing, b, [n1]}, C5), % confirmed: out
    ?assertEqual(out, caravan_cluster_core:participation(C6)),
    {_, A7} = caravan_cluster_core:handle({connect_result, n1, false}, C6),
    ?assertMatch([{arm, ?RETRY_MIN, {retry, n1, _}}],
                 [A || {arm, _, {retry, n1, _}} = A <- A7]).

%% The delay of the retry in Actions, then (N - 1 times) fires it, fails
%% the dial it makes, and so on: N delays.
retry_streak(C, Actions, N) ->
    [{arm, Ms, Retry}] = [A || {arm, _, {retry, n1, _}} = A <- Actions],
    {C1, A1} = caravan_cluster_core:handle({timer, Retry}, C),
    ?assertEqual([{connect, n1}], [A || {connect, _} = A <- A1]),
    case N of
        1 -> [Ms];
        _ ->
            {C2, A2} = caravan_cluster_core:handle({connect_result, n1, false}, C1),
            [Ms | retry_streak(C2, A2, N - 1)]
    end.

%% A node that announced its departure is listed again, its retry timer
%% fires, its link drops: it is not dialled while it stays departed.
departed_is_not_dialled_test() ->
    {C1, A1} = run([{listing, a, [n1]}, {connect_result, n1, false}]),
    [Retry] = [T || {retry, _, _} = T <- timers_of(A1)],
    {C2, _} = caravan_cluster_core:handle({departing, n1}, C1),
    {C3, A3} = lists:foldl(fun(E, {C, As}) ->
                                   {C0, A} = caravan_cluster_core:handle(E, C),
                                   {C0, As ++ A}
                           end, {C2, []},
                           [{listing, a, [n1]}, {timer, Retry}, {listing, b, [n1]},
                            {nodeup, n1}, {departing, n1}, {nodedown, n1}, {listing, a, [n1]}]),
    ?assertEqual([], [A || {connect, _} = A <- A3]),
    ?assertEqual(departed, caravan_cluster_core:node_state(n1, C3)).

%% The leave's scope: global only with every fact for it (OTP 25.1's
%% global:disconnect/0, global preventing overlapping partitions, erlang's
%% own disconnect MFA) and someone to leave; members otherwise.
leave_scope_test_() ->
    Facts = [#{global_disconnect => G, pop => P, default_disconnect => D}
             || G <- [true, false], P <- [true, false], D <- [true, false]],
    [?_assertEqual(case {Ns, F} of
                       {[_ | _], #{global_disconnect := true, pop := true,
                                   default_disconnect := true}} -> global;
                       _ -> members
                   end, caravan_cluster_core:leave_scope(Ns, F))
     || F <- Facts, Ns <- [[], [n1, n2]]].

%% The confirmed absence of a node with global facts leaves through global;
%% the end of a cluster drops its managed nodes in the same scope, and
%% nothing with prune off unless the node stops.
leave_uses_the_facts_test() ->
    Global = #{leave_facts => #{global_disconnect => true, pop => true,
                                default_disconnect => true}},
    {C1, _} = run([{listing, a, [n1, n0]}, {nodeup, n1}], Global#{self_listed => true}),
    {C2, A2} = run_more(C1, [{listing, a, [n1]}, {listing, a, [n1]}]),
    ?assertEqual([{leave, [n1], global}], [A || {leave, _, _} = A <- A2]),
    ?assertEqual(none, caravan_cluster_core:departure(C2, true)),
    {C3, _} = run([{listing, a, [n1]}, {nodeup, n1}], Global),
    ?assertEqual({leave, [n1], global}, caravan_cluster_core:departure(C3, false)),
    {C4, _} = run([{listing, a, [n1]}, {nodeup, n1}], #{prune => false}),
    ?assertEqual(none, caravan_cluster_core:departure(C4, false)),
    ?assertEqual({leave, [n1], members}, caravan_cluster_core:departure(C4, true)).

%% A dial the list_nodes MFA made needless (`already') is a connection:
%% the node is a member, with the joined line a dial's true gives.
already_connected_is_a_member_test() ->
    {C, A} = run([{listing, a, [n1]}, {connect_result, n1, already}]),
    ?assertEqual([n1], caravan_cluster_core:members(C) -- [n0]),
    ?assertEqual(connected, caravan_cluster_core:node_state(n1, C)),
    ?assertMatch([_], [L || {log, joined, _} = L <- A]).

run_more(Core, Events) ->
    lists:foldl(fun(E, {C, As}) ->
                        {C1, A} = caravan_cluster_core:handle(E, C),
                        {C1, As ++ A}
                end, {Core, []}, Events).

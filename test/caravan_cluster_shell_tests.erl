%%% The cluster shell (caravan_cluster) against what its users hand it:
%%% callback sources that answer junk or hang, connect MFAs that raise,
%%% hang or answer garbage, and a cluster stopped with a dial in flight.
%%% One real cluster process per test, in this (non-distributed) node:
%%% nothing here needs a peer, only what the shell does with the answers.
-module(caravan_cluster_shell_tests).

-include_lib("eunit/include/eunit.hrl").

-export([hanging_connect/2, garbage_connect/2, raising_connect/2, counted_connect/2]).
-export([not_a_list/0]).
-export([get_nodes/1]).
-export([log/2]).

-define(GOOD, {ok, [{"127.0.0.1", 4001}, {"127.0.0.1", 4002}]}).
%% Every wait is bounded; the machine is shared, so generously.
-define(WAIT_MS, 15000).

%% caravan_cluster's own doc: a cluster started while caravan's supervisor
%% (and so its pg scope) is not running is simply not listed in
%% caravan:status(). Before the fix it crashed in init: pg:join/3 on a
%% scope that is not running exits (noproc), it does not raise badarg.
starts_without_the_pg_scope_test() ->
    _ = application:stop(caravan),
    ?assertEqual(undefined, whereis(caravan_clusters)),
    set(no_scope, ?GOOD),
    C = start(no_scope, #{}),
    try
        wait(fun() -> listed(C) =:= 2 end),
        ?assertEqual([], caravan_cluster:all())
    after
        stop(C)
    end.

%% caravan's pg scope killed and restarted by caravan's supervisor (empty):
%% the cluster joins it again, so caravan:status() and the departure
%% notices at stop find it. Before, it stayed outside for good.
rejoins_a_restarted_pg_scope_test_() ->
    {timeout, 60,
     fun() ->
             {ok, _} = application:ensure_all_started(caravan),
             set(rejoin, ?GOOD),
             C = start(rejoin, #{}),
             try
                 wait(fun() -> lists:member(C, caravan_cluster:all()) end),
                 %% Twice: the new scope is watched too.
                 [begin
                      Old = whereis(caravan_clusters),
                      exit(Old, kill),
                      wait(fun() -> not lists:member(whereis(caravan_clusters), [undefined, Old])
                           end),
                      wait(fun() -> lists:member(C, caravan_cluster:all()) end)
                  end || _ <- [1, 2]],
                 ?assert(is_process_alive(C))
             after
                 stop(C)
             end
     end}.

%% A libcluster topology's config is an Elixir keyword list, where the
%% first of duplicate keys is the value (Keyword.get/2, and so every
%% libcluster strategy; Caravan.Cluster.Config too). Before the fix the
%% last one won: `[prune: false, ..., prune: true]' pruned.
libcluster_keyword_duplicates_first_wins_test() ->
    set(dups, ?GOOD),
    Source = {callback, #{basename => "app", discover => fun() -> answer(dups) end}},
    {ok, C} = caravan_libcluster:start_link(
                [#{topology => shell_test_dups,
                   connect => {?MODULE, garbage_connect, [self()]},
                   disconnect => {erlang, disconnect_node, []},
                   list_nodes => {erlang, nodes, [connected]},
                   config => [{sources, [Source]}, {prune, false}, {poll_interval, 1000},
                              {self_listed, false}, {prune, true}, {poll_interval, 7}]}]),
    unlink(C),
    try
        ?assertMatch(#{prune := false, prune_grace := 4000}, caravan_cluster:status(C))
    after
        caravan_cluster:stop(C)
    end.

%% README: a config with a malformed source is refused before anything
%% starts. Before the fix a basename, query or service of the wrong type
%% was accepted, and every lookup then failed (a basename the naming rule
%% cannot take crashed the poller, restarted every 500 ms).
malformed_source_fields_are_refused_test_() ->
    Fun = fun() -> {ok, []} end,
    Bad = [{callback, #{basename => 42, discover => Fun}},
           {callback, #{basename => app, discover => Fun}},
           {callback, #{basename => "", discover => Fun}},
           {dns, #{basename => "app", query => 3}},
           {dns, #{basename => <<255>>, query => "app.service.consul"}},
           {consul, #{basename => "app", service => 42}},
           {nomad, #{basename => {a}, service => "app"}}],
    Good = [{callback, #{basename => <<"app">>, discover => Fun}},
            {dns, #{basename => "app", query => <<"app.service.consul">>}},
            {consul, #{basename => "app", service => "app-dist"}}],
    %% A bad value is named: {bad_config, Key, Value} (caravan_options).
    [?_assertMatch({error, {bad_config, _, _}},
                   caravan_cluster_config:check(#{sources => [S]})) || S <- Bad]
        ++ [?_assertEqual(ok, caravan_cluster_config:check(#{sources => [S]})) || S <- Good].

%% A callback that answers junk, in whole or in part, is an error: the
%% last listing stands (README, "Clusters that form themselves": an error
%% keeps the last listing). Before the fix, junk entries were dropped
%% silently ({ok, [foo]} was an empty listing: every member pruned), and an
%% entry the naming rule could not take crashed the poller, which was
%% restarted every 500 ms with a warning each time and no last_error.
callback_junk_keeps_the_listing_test_() ->
    {timeout, 120,
     fun() ->
             Key = junk,
             set(Key, ?GOOD),
             C = start(Key, #{}),
             try
                 wait(fun() -> listed(C) =:= 2 end),
                 lists:foreach(
                   fun(Junk) ->
                           set(Key, Junk),
                           wait(fun() -> last_error(C) =/= undefined end),
                           ?assertMatch({bad_callback_result, _}, last_error(C)),
                           ?assertEqual(2, listed(C)),
                           ?assert(is_process_alive(C)),
                           set(Key, ?GOOD),
                           wait(fun() -> last_error(C) =:= undefined end)
                   end,
                   [{ok, [foo]},
                    {ok, [{"127.0.0.1", 4001}, {"127.0.0.1"}]},
                    {ok, [{"127.0.0.1", "4001"}]},          % port as text
                    {ok, [{"127.0.0.1", 0}]},
                    {ok, [{"127.0.0.1", 70000}]},
                    {ok, [{lists:duplicate(300, $a), 4001}]}, % no atom that long
                    {ok, [{'127.0.0.1', 4001}]},
                    {ok, [{<<255, 254>>, 4001}]},             % not UTF-8
                    {ok, not_a_list},
                    %% Issue 18 (attacker, items 8-9): an improper list
                    %% crashed the poller (bad_generator), restarted every
                    %% 500 ms; hosts that name no node were listed
                    %% ('app-4001@').
                    {ok, [{"127.0.0.1", 4001} | x]},
                    {ok, [{"", 4001}]},
                    {ok, [{"a b", 4001}]},
                    {ok, [{"a@b", 4001}]},
                    {ok, [{"a\0b", 4001}]},
                    {ok, [{<<"a\nb">>, 4001}]}])
             after
                 stop(C)
             end
     end}.

%% A callback that never returns is abandoned after its deadline and counts
%% as an error; the source is polled again. Before the fix the source
%% went silent for good, with nothing in caravan:status() to say so.
callback_that_hangs_is_abandoned_test_() ->
    %% The deadline is 2 x poll_interval (50 ms here), at least 5 s (README).
    {timeout, 120, fun() -> errors_keep_the_listing(hang, [{hang, {callback_timeout, 5000}}]) end}.

%% A callback that kills its own process (exit(self(), kill)) is an error
%% in status, the last listing standing, and the source is polled again.
%% Before the fix the poller's exit was taken for a crash: no last_error,
%% a warning and a restart every 500 ms, whatever poll_interval.
callback_that_kills_itself_is_an_error_test_() ->
    %% Ended with reason normal: the same, not a callback timeout 5 s later
    %% (attacker 2).
    {timeout, 120,
     fun() ->
             errors_keep_the_listing(killed, [{kill, {poller_exited, killed}},
                                              {exit_normal, {poller_exited, normal}}])
     end}.

%% Key's callback answers ?GOOD (two nodes), then each Behaviour in turn,
%% the good answer between them: each is the Error beside it in status,
%% the last listing standing. A listing of one then replaces it and clears
%% the error (the source was polled again).
errors_keep_the_listing(Key, Cases) ->
    set(Key, ?GOOD),
    C = start(Key, #{}),
    try
        wait(fun() -> listed(C) =:= 2 end),
        [begin
             set(Key, ?GOOD),
             wait(fun() -> last_error(C) =:= undefined end),
             set(Key, Behaviour),
             wait(fun() -> last_error(C) =/= undefined end),
             ?assertEqual(Error, last_error(C)),
             ?assertEqual(2, listed(C))
         end || {Behaviour, Error} <- Cases],
        set(Key, {ok, [{"127.0.0.1", 4001}]}),
        wait(fun() -> listed(C) =:= 1 andalso last_error(C) =:= undefined end)
    after
        stop(C)
    end.

%% README: a callback is abandoned after 2 x poll_interval, at least 5 s.
%% With poll_interval 50 a callback that takes 300 ms is within the floor:
%% it is never abandoned, and its listing stands, poll after poll. Without
%% the floor (a deadline of 100 ms) every poll was killed: listed 0,
%% last_error {callback_timeout, 100}.
slow_callback_within_the_deadline_floor_test_() ->
    {timeout, 120,
     fun() ->
             Key = slow,
             set(Key, {slow, 300, ?GOOD}),
             C = start(Key, #{}),
             try
                 %% Three answers in a row, each after 300 ms: three polls
                 %% that a 100 ms deadline would each have abandoned.
                 wait(fun() -> answers(Key) >= 3 end),
                 ?assertEqual(undefined, last_error(C)),
                 ?assertEqual(2, listed(C))
             after
                 stop(C)
             end
     end}.

%% A connect MFA that raises or answers garbage is a failed dial: retried,
%% the cluster keeps answering.
connect_mfa_garbage_is_a_failed_dial_test_() ->
    {timeout, 60,
     [fun() ->
              Key = {connect, F},
              set(Key, ?GOOD),
              C = start(Key, #{connect => {?MODULE, F, [self()]}}),
              try
                  wait(fun() -> dials() >= 4 end), % two nodes, each retried
                  %% Failed, so a retry waits; and the cluster still answers.
                  wait(fun() ->
                               maps:get(pending_retries, caravan_cluster:status(C)) >= 1
                       end),
                  ?assert(is_process_alive(C)),
                  ?assertEqual([], caravan_cluster:members(C))
              after
                  stop(C)
              end
      end || F <- [garbage_connect, raising_connect]]}.

%% libcluster's telemetry events fire although nothing loaded the telemetry
%% library first, as in iex or `mix run' (interactive code loading). Before,
%% the check for telemetry:execute/3 saw an unloaded module and skipped
%% every event.
telemetry_is_loaded_when_needed_test_() ->
    {timeout, 60,
     fun() ->
             Key = telemetry_load,
             set(Key, ?GOOD),
             Holder = spawn(fun() ->
                                    ets:new(caravan_test_telemetry,
                                            [named_table, public, ordered_set]),
                                    receive stop -> ok end
                            end),
             wait(fun() -> ets:info(caravan_test_telemetry) =/= undefined end),
             _ = code:purge(telemetry),
             _ = code:delete(telemetry),
             _ = code:purge(telemetry),
             false = erlang:module_loaded(telemetry),
             C = start(Key, #{connect => {?MODULE, garbage_connect, [self()]}}),
             try
                 wait(fun() -> dials() >= 2 end),
                 wait(fun() -> [E || {_, [caravan, cluster, connect, error] = E, _, _}
                                         <- ets:tab2list(caravan_test_telemetry)] =/= []
                      end)
             after
                 stop(C),
                 Holder ! stop
             end
     end}.

%% Where telemetry is not installed, the cluster looks for it once, not at
%% every dial: each look searches every folder of the code path, and a
%% cold start of 100 nodes spent more of a node's work in erl_prim_loader
%% and code_server than in distribution (make bench-scale). Before, every
%% event called code:ensure_loaded(telemetry).
telemetry_absent_is_looked_for_once_test_() ->
    {timeout, 60,
     fun() ->
             Key = telemetry_absent,
             set(Key, ?GOOD),
             {module, telemetry} = code:ensure_loaded(telemetry),
             Dir = filename:dirname(code:which(telemetry)),
             _ = caravan_test_peer:module_info(),   % wait/1's, loaded before the path shrinks
             _ = code:purge(telemetry),
             _ = code:delete(telemetry),
             _ = code:purge(telemetry),
             true = code:del_path(Dir),
             Tracer = spawn(fun() -> count_traced(0) end),
             try
                 false = erlang:module_loaded(telemetry),
                 non_existing = code:which(telemetry),
                 1 = erlang:trace_pattern({code, ensure_loaded, 1}, true, []),
                 C = start(Key, #{}),
                 _ = erlang:trace(C, true, [call, {tracer, Tracer}]),
                 %% Read before stop/1, which drops the dial counter's table.
                 Dials = try
                             wait(fun() -> dials() >= 20 end),
                             dials()
                         after
                             stop(C)
                         end,
                 Tracer ! {count, self()},
                 Looks = receive {looks, N} -> N after 5000 -> timeout end,
                 ?assert(Looks =< 1, {looks_for_telemetry, Looks, dials, Dials})
             after
                 erlang:trace_pattern({code, ensure_loaded, 1}, false, []),
                 exit(Tracer, kill),
                 true = code:add_patha(Dir)
             end
     end}.

count_traced(N) ->
    receive
        {trace, _, call, {code, ensure_loaded, [telemetry]}} -> count_traced(N + 1);
        {trace, _, call, _} -> count_traced(N);
        {count, From} -> From ! {looks, N}
    end.

%% Issue 20 item 4: one line per failed dial, at the 1st, 2nd, 4th, 8th...
%% failure: caravan's line for a cluster caravan started, libcluster's for
%% one libcluster started, never both; every line passes the filters of
%% OTP's default handler (which relx releases log through). Telemetry:
%% one event per dial, [caravan, cluster, ...] for caravan's clusters and
%% [libcluster, ...] only for libcluster's. Before, each failure logged
%% libcluster's line (domain [libcluster], dropped by OTP's default
%% handler) AND caravan's, and caravan's own clusters emitted libcluster's
%% events.
failed_dials_log_one_line_each_test_() ->
    {timeout, 60,
     [fun() -> one_line_per_failure(caravan) end,
      fun() -> one_line_per_failure(libcluster) end]}.

one_line_per_failure(StartedBy) ->
    Key = {one_line, StartedBy},
    set(Key, {ok, [{"127.0.0.1", 4001}]}),
    Holder = telemetry_table(),
    ok = logger:add_handler(?MODULE, ?MODULE,
                            #{level => all, config => #{test => self()},
                              filter_default => stop, filters => otp_default_filters()}),
    C = case StartedBy of
            caravan -> start(Key, #{});
            libcluster -> start_libcluster(Key)
        end,
    Topology = maps:get(cluster, caravan_cluster:status(C)),
    try
        wait(fun() -> dials() >= 9 end)
    after
        stop(C),
        ok = logger:remove_handler(?MODULE)
    end,
    Events = [{E, Md} || {_, E, _, Md} <- ets:tab2list(caravan_test_telemetry)],
    Holder ! stop,
    Node = 'app-4001@127.0.0.1',
    Failures = length([E || {E, #{node := N}} <- Events, N =:= Node,
                            lists:last(E) =:= error]),
    ?assert(Failures >= 9),
    ?assertEqual([], [E || {E, _} <- Events, not lists:member(E, events(StartedBy))]),
    Lines = collect_lines(),
    ?debugFmt("~p failures, lines: ~p", [Failures, Lines]),
    Caravan = [L || L <- Lines, binary:match(L, <<"cannot connect to 'app-4001@127.0.0.1'">>)
                                =/= nomatch],
    Libcluster = [L || L <- Lines,
                       binary:match(L, iolist_to_binary(
                                         ["[libcluster:", atom_to_list(Topology),
                                          "] unable to connect to :\"app-4001@127.0.0.1\""]))
                           =/= nomatch],
    Expected = length([A || A <- lists:seq(1, Failures), A band (A - 1) =:= 0]),
    case StartedBy of
        caravan -> ?assertEqual({Expected, 0}, {length(Caravan), length(Libcluster)});
        libcluster -> ?assertEqual({0, Expected}, {length(Caravan), length(Libcluster)})
    end.

events(caravan) -> [[caravan, cluster, connect, error]];
events(libcluster) -> [[libcluster, connect_node, error]].

start_libcluster(Key) ->
    start_table(),
    Source = {callback, #{basename => "app", discover => fun() -> answer(Key) end}},
    Topology = list_to_atom("shell_lc_" ++ integer_to_list(erlang:unique_integer([positive]))),
    {ok, C} = caravan_libcluster:start_link(
                [#{'__struct__' => 'Elixir.Cluster.Strategy.State', topology => Topology,
                   connect => {?MODULE, garbage_connect, [self()]},
                   disconnect => {erlang, disconnect_node, []},
                   list_nodes => {erlang, nodes, [connected]}, meta => nil,
                   config => [{sources, [Source]}, {poll_interval, 50}, {self_listed, false},
                              {prune, false}, {retry_min, 20}, {retry_max, 40}]}]),
    unlink(C),
    C.

%% The filters OTP's default handler starts with (kernel's
%% ?DEFAULT_HANDLER_FILTERS, logger_internal.hrl, OTP 21 to 28), with
%% filter_default stop: an event with a domain outside [otp, sasl] is
%% dropped.
otp_default_filters() ->
    [{remote_gl, {fun logger_filters:remote_gl/2, stop}},
     {domain, {fun logger_filters:domain/2, {log, super, [otp, sasl]}}},
     {no_domain, {fun logger_filters:domain/2, {log, undefined, []}}}].

%% logger handler: each event that passed the filters, to the test.
-spec log(logger:log_event(), logger:handler_config()) -> ok.
log(Event, #{config := #{test := Test}}) ->
    Text = logger_formatter:format(Event, #{single_line => true, template => [msg]}),
    Test ! {logged, iolist_to_binary(Text)},
    ok.

collect_lines() ->
    receive {logged, L} -> [L | collect_lines()]
    after 0 -> []
    end.

%% A fresh table for the telemetry stand-in, owned by the returned pid.
telemetry_table() ->
    _ = [ets:delete(caravan_test_telemetry) || ets:whereis(caravan_test_telemetry) =/= undefined],
    Self = self(),
    Holder = spawn(fun() ->
                           ets:new(caravan_test_telemetry, [named_table, public, ordered_set]),
                           Self ! telemetry_table,
                           receive stop -> ok end
                   end),
    receive telemetry_table -> Holder after ?WAIT_MS -> error(no_table) end.

%% caravan_cluster:stop/1 with dials in flight: nothing the cluster
%% started outlives it. Before the fix a dialler (and a poller) survived
%% the normal exit of gen_server:stop/1 and could connect a node after
%% the cluster was gone.
stop_with_dials_in_flight_test_() ->
    {timeout, 60,
     fun() ->
             Key = stop_dials,
             set(Key, ?GOOD),
             C = start(Key, #{connect => {?MODULE, hanging_connect, [self()]}}),
             Diallers = [receive {dialling, P, _} -> P after ?WAIT_MS -> error(no_dial) end
                         || _ <- [1, 2]],
             Refs = [monitor(process, P) || P <- Diallers],
             ok = caravan_cluster:stop(C),
             [receive {'DOWN', R, process, _, _} -> ok after ?WAIT_MS -> error({alive, R}) end
              || R <- Refs],
             %% Nor does anything dial once it is stopped (a surviving
             %% poller would list the nodes again and dial them).
             receive {dialling, _, _} = D -> error({dial_after_stop, D}) after 500 -> ok end
     end}.

%% Caravan 1.0.1's strategy with a user's dns_client (this module): an SRV
%% record with port 0 (RFC 2782: the service is not there) names no node
%% and is left out, the others are listed (1.0.1 dialled app-0@host in
%% vain); an answer that is not [{Port, Host}] keeps the last listing.
compat_dns_client_answers_test_() ->
    {timeout, 60,
     fun() ->
             set(dns_client, [{0, <<"gone.example">>}, {4001, <<"127.0.0.1">>}]),
             State = #{topology => shell_test_compat, connect => {?MODULE, garbage_connect, [self()]},
                       disconnect => {erlang, disconnect_node, []},
                       list_nodes => {erlang, nodes, [connected]},
                       config => [{query, "app.service.consul"}, {node_sname, "app"},
                                  {dns_client, ?MODULE}, {poll_interval, 50}]},
             Options = 'Elixir.Caravan.Cluster.DnsStrategy':cluster_options(
                         'Elixir.Caravan.Cluster.Config':new(State)),
             start_table(),
             {ok, C} = caravan_cluster:start_link(
                         shell_test_compat,
                         Options#{connect => {?MODULE, garbage_connect, [self()]}}),
             unlink(C),
             try
                 wait(fun() -> listed(C) =:= 1 end),
                 ?assertEqual(undefined, last_error(C)),
                 [begin
                      set(dns_client, Junk),
                      wait(fun() -> last_error(C) =/= undefined end),
                      ?assertEqual(1, listed(C)),
                      set(dns_client, [{4001, <<"127.0.0.1">>}]),
                      wait(fun() -> last_error(C) =:= undefined end)
                  end || Junk <- [not_a_list, [{<<"127.0.0.1">>, 4001}], [{70000, "h"}]]]
             after
                 stop(C)
             end
     end}.

%% 1.0.1 built names by interpolation (`:"#{node_sname}-#{port}@#{host}"'),
%% so node_sname could be an atom or a charlist as well as a string.
%% Before the fix an atom made every poll fail (the naming rule takes
%% text only) and the cluster never formed; find_nodes/1 raised.
compat_node_sname_as_atom_test_() ->
    {timeout, 60,
     fun() ->
             set(dns_client, [{4001, <<"127.0.0.1">>}]),
             State = #{topology => shell_test_sname, connect => {?MODULE, garbage_connect, [self()]},
                       disconnect => {erlang, disconnect_node, []},
                       list_nodes => {erlang, nodes, [connected]},
                       config => [{query, "app.service.consul"}, {node_sname, app},
                                  {dns_client, ?MODULE}, {poll_interval, 50}]},
             Config = 'Elixir.Caravan.Cluster.Config':new(State),
             start_table(),
             ?assertEqual({error, [{'app-4001@127.0.0.1', {what, is, this}}]},
                          'Elixir.Caravan.Cluster.DnsStrategy':find_nodes(Config)),
             Options = 'Elixir.Caravan.Cluster.DnsStrategy':cluster_options(Config),
             {ok, C} = caravan_cluster:start_link(shell_test_sname, Options),
             unlink(C),
             try
                 wait(fun() -> listed(C) =:= 1 end),
                 ?assertEqual(undefined, last_error(C))
             after
                 stop(C)
             end
     end}.

-spec get_nodes(binary()) -> term().
get_nodes(<<"app.service.consul">>) ->
    persistent_term:get({?MODULE, dns_client}).

%% A dial killed from outside (an operator ending a process that looks
%% stuck) is a failed dial: the node is dialled again. Before the fix the
%% cluster waited for its answer for ever and never dialled the node again.
killed_dial_is_retried_test_() ->
    {timeout, 60,
     fun() ->
             set(killed, {ok, [{"127.0.0.1", 4001}]}),
             C = start(killed, #{connect => {?MODULE, hanging_connect, [self()]}}),
             try
                 First = receive {dialling, P1, _} -> P1 after ?WAIT_MS -> error(no_dial) end,
                 exit(First, kill),
                 receive {dialling, P2, _} when P2 =/= First -> ok
                 after ?WAIT_MS -> error(not_redialled)
                 end
             after
                 stop(C)
             end
     end}.

%% A connect MFA that never returns is abandoned at the dial deadline (2 x
%% the kernel's net_setuptime) as a failed dial, and the node is dialled
%% again. Before the fix the dial stayed in flight for good: the node was
%% never dialled again, and nothing said why.
hanging_dial_is_abandoned_and_retried_test_() ->
    {timeout, 60,
     fun() ->
             Old = application:get_env(kernel, net_setuptime),
             ok = application:set_env(kernel, net_setuptime, 0.5), % a number, as OTP reads it
             set(hung_dial, {ok, [{"127.0.0.1", 4001}]}),
             C = start(hung_dial, #{connect => {?MODULE, hanging_connect, [self()]}}),
             try
                 First = receive {dialling, P1, _} -> P1 after ?WAIT_MS -> error(no_dial) end,
                 T0 = erlang:monotonic_time(millisecond),
                 Ref = monitor(process, First),
                 receive {'DOWN', Ref, process, First, killed} -> ok
                 after ?WAIT_MS -> error(dial_not_abandoned)
                 end,
                 Took = erlang:monotonic_time(millisecond) - T0,
                 %% T0 is when the test heard of the dial, which may be
                 %% late on a loaded machine: a loose lower bound.
                 ?assert(Took >= 500, {abandoned_before_its_deadline, Took}),
                 receive {dialling, P2, _} when P2 =/= First -> ok
                 after ?WAIT_MS -> error(not_redialled)
                 end,
                 ?assert(is_process_alive(C))
             after
                 case Old of
                     {ok, V} -> application:set_env(kernel, net_setuptime, V);
                     undefined -> application:unset_env(kernel, net_setuptime)
                 end,
                 stop(C)
             end
     end}.

%% A list_nodes MFA that answers something other than a list: the cluster
%% starts, and dials through its connect MFA as if no node were connected
%% (connecting a connected node is harmless). Before the fix init crashed
%% (badarg in lists:member/2), and had it started, every dial would have
%% failed with badarg without the connect MFA ever being called.
list_nodes_not_a_list_test_() ->
    {timeout, 60,
     fun() ->
             set(bad_list, ?GOOD),
             C = start(bad_list, #{connect => {?MODULE, counted_connect, [self()]},
                                   list_nodes => {?MODULE, not_a_list, []}}),
             try
                 wait(fun() -> dials() >= 2 end),
                 wait(fun() -> length(caravan_cluster:members(C)) =:= 2 end),
                 ?assert(is_process_alive(C))
             after
                 stop(C)
             end
     end}.

%%%---------------------------------------------------------------------------
%%% Connect MFAs (a libcluster user's own)
%%%---------------------------------------------------------------------------

-spec hanging_connect(pid(), node()) -> no_return().
hanging_connect(Test, Node) ->
    Test ! {dialling, self(), Node},
    receive after infinity -> ok end.

-spec garbage_connect(pid(), node()) -> term().
garbage_connect(_Test, _Node) ->
    count_dial(),
    {what, is, this}.

%% Answers true (connected) for every node, counting the calls.
-spec counted_connect(pid(), node()) -> true.
counted_connect(_Test, _Node) ->
    count_dial(),
    true.

-spec not_a_list() -> atom().
not_a_list() -> everything.

-spec raising_connect(pid(), node()) -> no_return().
raising_connect(_Test, _Node) ->
    count_dial(),
    error(user_bug).

count_dial() ->
    _ = ets:update_counter(caravan_shell_test_dials, n, 1, {n, 0}),
    ok.

dials() ->
    try ets:lookup_element(caravan_shell_test_dials, n, 2)
    catch error:badarg -> 0
    end.

%%%---------------------------------------------------------------------------
%%% Helpers
%%%---------------------------------------------------------------------------

%% The callback's answer, read on every call (a hang when asked to).
set(Key, Answer) ->
    persistent_term:put({?MODULE, Key}, Answer).

answer(Key) ->
    case persistent_term:get({?MODULE, Key}) of
        hang -> receive after infinity -> ok end;
        kill -> exit(self(), kill);
        exit_normal -> exit(self(), normal);
        {slow, Ms, Answer} ->
            timer:sleep(Ms), % the slow user function itself, not a wait
            _ = ets:update_counter(caravan_shell_test_dials, {answers, Key}, 1,
                                   {{answers, Key}, 0}),
            Answer;
        Answer -> Answer
    end.

%% How many slow answers the callback of Key has given.
answers(Key) ->
    try ets:lookup_element(caravan_shell_test_dials, {answers, Key}, 2)
    catch error:badarg -> 0
    end.

start(Key, Extra) ->
    start_table(),
    Config = maps:merge(#{sources => [{callback, #{basename => "app",
                                                   discover => fun() -> answer(Key) end}}],
                          poll_interval => 50, self_listed => false, prune => false,
                          retry_min => 20, retry_max => 40,
                          connect => {?MODULE, garbage_connect, [self()]}},
                        Extra),
    Name = list_to_atom("shell_test_" ++ integer_to_list(erlang:unique_integer([positive]))),
    {ok, C} = caravan_cluster:start_link(Name, Config),
    unlink(C),
    C.

start_table() ->
    Table = caravan_shell_test_dials,
    case get(table_owner) of
        undefined -> ok;
        Old -> Old ! stop
    end,
    _ = [ets:delete(Table) || ets:whereis(Table) =/= undefined],
    Self = self(),
    %% The table outlives the dialler processes that write to it.
    Owner = spawn(fun() -> ets:new(Table, [named_table, public]),
                           Self ! table, receive stop -> ok end end),
    receive table -> ok after ?WAIT_MS -> error(no_table) end,
    put(table_owner, Owner),
    ok.

stop(C) ->
    _ = [caravan_cluster:stop(C) || is_process_alive(C)],
    case get(table_owner) of
        undefined -> ok;
        Owner -> Owner ! stop
    end,
    ok.

status_source(C) ->
    [Source] = maps:get(sources, caravan_cluster:status(C)),
    Source.

listed(C) -> maps:get(listed, caravan_cluster:status(C)).

last_error(C) -> maps:get(last_error, status_source(C)).

wait(Cond) ->
    caravan_test_peer:wait_until(Cond, ?WAIT_MS).

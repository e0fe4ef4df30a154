%%% @doc The decisions of a cluster that forms itself, with no side effects:
%%% `handle(Event, Core) -> {Core, [Action]}'. caravan_cluster (the shell)
%%% feeds it events and performs the actions; the PropEr properties of
%%% test/caravan_cluster_core_tests.erl run it against random event sequences.
%%%
%%% One record per known node, in one state:
%%%
%%% <ul>
%%% <li>`listed': listed, not dialled (this node is outside the listing).</li>
%%% <li>`connecting': listed, a dial in flight.</li>
%%% <li>`connected': listed and connected: a member.</li>
%%% <li>`retrying': listed, the last dial failed, a retry timer armed.</li>
%%% <li>`departed': listed, but it told us it is leaving: not dialled until it
%%%     connects itself or a listing drops it.</li>
%%% <li>`leaving': no longer listed; kept `prune_grace' ms so that it can
%%%     leave by itself (and so that a late dial or a late nodeup from it is
%%%     still recognised as a node that was ours), then disconnected if it is
%%%     still connected and `prune' is on, and kept one more grace (a node
%%%     that dials back is pruned again); forgotten after a grace in which
%%%     it was not connected.</li>
%%% <li>`foreign': connected, and not ours to disconnect: never listed (a
%%%     node connected by hand or by another cluster; a remote shell is
%%%     hidden and never seen here), or left the listing while `prune' is
%%%     off. Never disconnected; forgotten at its nodedown, or made a member
%%%     if a listing names it.</li>
%%% </ul>
%%%
%%% Besides its state a record carries two facts the state does not decide:
%%% whether the node is connected (`up') and whether a dial is in flight
%%% (`dial'; a dial cannot be cancelled, so a node delisted while one is in
%%% flight keeps it).
%%%
%%% Self-removal: while `self_listed' is on and this node is absent from
%%% every listing, it waits for confirmation (a second listing without it,
%%% or 2 x `poll_interval' ms) and then leaves: a `{leave, Members, Scope}'
%%% action (departure notice, then the connections are dropped in Scope,
%%% `global' or `members': leave_scope/2, docs/global.md). A dial's node
%%% the `list_nodes' MFA already had is not dialled: result `already'.
%%%
%%% Invariants (checked after every step by the PropEr properties):
%%% <ol>
%%% <li>At most one dial in flight per node: `{connect, N}' is only emitted
%%%     for a node without one.</li>
%%% <li>A node that is listed, not connected, not departed, while this node
%%%     takes part, is `connecting' or `retrying' (with a timer armed): it is
%%%     dialled within one retry step. Listed and connected is `connected'.</li>
%%% <li>`{disconnect, N}' only names a node that some source listed, that no
%%%     source lists now, and only with `prune' on. `{leave, Ns, Scope}' only
%%%     names nodes some source listed, and its Scope is leave_scope(Ns) of
%%%     the facts the core was given.</li>
%%% <li>Records are bounded: every record is a listed node, a connected
%%%     foreign node, or a `leaving' node with its grace timer armed or a
%%%     dial in flight.</li>
%%% <li>No `retrying' or `connecting' record for a node no source lists.</li>
%%% </ol>
-module(caravan_cluster_core).

-export([new/1]).
-export([handle/2]).
-export([members/1]).
-export([listed/1]).
-export([describe/1]).
-export([nodes/1]).
-export([node_state/2]).
-export([participation/1]).
-export([leave_scope/2]).
-export([departure/2]).
-export([managed/1]).
-export([connected/1]).

-export_type([core/0, event/0, action/0, options/0, node_state/0, leave_facts/0,
              leave_scope/0]).

-type node_state() :: listed | connecting | connected | retrying | departed | leaving
                    | foreign.
-type source_id() :: term().
-type timer() :: {retry, node(), pos_integer()} | {prune, node(), pos_integer()}
               | {confirm_absence, pos_integer()}.
-type event() :: {listing, source_id(), [node()]}
               | {source_error, source_id(), term()}
               | {nodeup, node()}
               | {nodedown, node()}
               | {connect_result, node(), boolean() | already}
               | {departing, node()}
               | {timer, timer()}.
-type action() :: {connect, node()}
                | {disconnect, node()}
                | {leave, [node()], leave_scope()}
                | {arm, non_neg_integer(), timer()}
                | {log, atom(), map()}.
-type options() :: #{self := node(),
                     self_listed := boolean(),
                     prune := boolean(),
                     poll_interval := pos_integer(),
                     prune_grace := non_neg_integer(),
                     retry_min := pos_integer(),
                     retry_max := pos_integer(),
                     leave_facts => leave_facts(),
                     up => [node()]}.
%% What a leave's scope rests on: global:disconnect/0 exists (OTP 25.1+),
%% global prevents overlapping partitions, the disconnect MFA is erlang's.
-type leave_facts() :: #{global_disconnect := boolean(),
                         pop := boolean(),
                         default_disconnect := boolean()}.
-type leave_scope() :: global | members.

-record(node, {state :: node_state(),
               up = false :: boolean(),
               dial = false :: boolean(),
               attempts = 0 :: non_neg_integer(),
               timer :: pos_integer() | undefined}).

-record(core, {self :: node(),
               self_listed :: boolean(),
               prune :: boolean(),
               poll_interval :: pos_integer(),
               prune_grace :: non_neg_integer(),
               retry_min :: pos_integer(),
               retry_max :: pos_integer(),
               leave_facts :: leave_facts(),
               sources = #{} :: #{source_id() => [node()]},
               nodes = #{} :: #{node() => #node{}},
               %% in: taking part; absent: not listed, awaiting confirmation
               %% (timer id); out: left (or never joined).
               %% (new: no listing yet.)
               self_state = in :: new | in | {absent, pos_integer()} | out,
               seq = 0 :: non_neg_integer()}).

-opaque core() :: #core{}.

%%%---------------------------------------------------------------------------
%%% API
%%%---------------------------------------------------------------------------

%% @doc A core with no listing yet; `up' names the visible nodes connected
%% at start (they are foreign until listed).
-spec new(options()) -> core().
new(#{self := Self} = O) ->
    Core = #core{self = Self,
                 self_listed = maps:get(self_listed, O),
                 prune = maps:get(prune, O),
                 poll_interval = maps:get(poll_interval, O),
                 prune_grace = maps:get(prune_grace, O),
                 retry_min = maps:get(retry_min, O),
                 retry_max = maps:get(retry_max, O),
                 leave_facts = maps:get(leave_facts, O, #{global_disconnect => false,
                                                         pop => false,
                                                         default_disconnect => true}),
                 self_state = case maps:get(self_listed, O) of
                                  true -> new; % out until a listing names it
                                  false -> in
                              end},
    Foreign = maps:from_list([{N, #node{state = foreign, up = true}}
                              || N <- maps:get(up, O, []), N =/= Self]),
    Core#core{nodes = Foreign}.

-spec handle(event(), core()) -> {core(), [action()]}.
handle({listing, Id, Nodes}, Core) ->
    listing(Core#core{sources = (Core#core.sources)#{Id => lists:usort(Nodes)}});
handle({source_error, _Id, _Reason}, Core) ->
    {Core, []}; % its last listing stands
handle({nodeup, N}, #core{self = N} = Core) ->
    {Core, []};
handle({nodeup, N}, Core) ->
    nodeup(N, Core);
handle({nodedown, N}, Core) ->
    nodedown(N, Core);
handle({connect_result, N, already}, Core) ->
    %% list_nodes had it: connected without a dial.
    connect_result(N, true, Core);
handle({connect_result, N, Ok}, Core) ->
    connect_result(N, Ok, Core);
handle({departing, N}, Core) ->
    departing(N, Core);
handle({timer, T}, Core) ->
    timer(T, Core).

%% @doc Listed nodes connected now (this node included when listed).
-spec members(core()) -> [node()].
members(#core{self = Self, nodes = Nodes} = Core) ->
    [N || N <- listed(Core),
          N =:= Self orelse (is_map_key(N, Nodes) andalso (maps:get(N, Nodes))#node.up)].

%% @doc The union of the sources' last listings.
-spec listed(core()) -> [node()].
listed(#core{sources = Sources}) ->
    lists:usort(lists:append(maps:values(Sources))).

-spec nodes(core()) -> #{node() => node_state()}.
nodes(#core{nodes = Nodes}) ->
    maps:map(fun(_, #node{state = S}) -> S end, Nodes).

-spec node_state(node(), core()) -> node_state() | unknown.
node_state(N, #core{nodes = Nodes}) ->
    case maps:find(N, Nodes) of
        {ok, #node{state = S}} -> S;
        error -> unknown
    end.

%% @doc in (taking part), absent (unlisted, awaiting confirmation) or out.
-spec participation(core()) -> in | absent | out.
participation(#core{self_state = {absent, _}}) -> absent;
participation(#core{self_state = new}) -> out;
participation(#core{self_state = S}) -> S.

%% @doc How a leave drops Members: `global' (global:disconnect/0) where
%% member-by-member disconnects would cascade, else `members' (each through
%% the disconnect MFA). See docs/global.md.
-spec leave_scope([node()], leave_facts()) -> leave_scope().
leave_scope(Members, #{global_disconnect := GlobalDisconnect, pop := Pop,
                       default_disconnect := Default}) ->
    case Members =/= [] andalso GlobalDisconnect andalso Pop andalso Default of
        true -> global;
        false -> members
    end.

%% @doc What the cluster's end drops: its managed connections with `prune'
%% on or the node stopping, none otherwise.
-spec departure(core(), Stopping :: boolean()) -> none | {leave, [node()], leave_scope()}.
departure(#core{prune = Prune} = Core, Stopping) ->
    Managed = managed(Core),
    case Managed =/= [] andalso (Prune orelse Stopping) of
        true -> {leave, Managed, scope(Managed, Core)};
        false -> none
    end.

-spec scope([node()], core()) -> leave_scope().
scope(Members, #core{leave_facts = Facts}) ->
    leave_scope(Members, Facts).

%% @doc Connected nodes that are ours: listed, or leaving.
-spec managed(core()) -> [node()].
managed(#core{nodes = Nodes}) ->
    lists:sort([N || {N, #node{state = S, up = true}} <- maps:to_list(Nodes),
                     S =/= foreign]).

%% @doc Every connected node, ours or foreign: who hears a departure. A
%% node that lists this one is foreign here until this one lists it too
%% (a node that has just started, say), and would otherwise keep dialling.
-spec connected(core()) -> [node()].
connected(#core{nodes = Nodes}) ->
    lists:sort([N || {N, #node{up = true}} <- maps:to_list(Nodes)]).

-spec describe(core()) -> map().
describe(#core{nodes = Nodes, prune = Prune, prune_grace = Grace} = Core) ->
    Of = fun(State) -> lists:sort([N || {N, #node{state = S}} <- maps:to_list(Nodes),
                                        S =:= State]) end,
    #{prune => Prune,
      prune_grace => Grace,
      members => length(members(Core)),
      listed => length(listed(Core)),
      self => participation(Core),
      pending_retries => length(Of(retrying)),
      departed => Of(departed),
      leaving => Of(leaving),
      foreign => Of(foreign)}.

%%%---------------------------------------------------------------------------
%%% Events
%%%---------------------------------------------------------------------------

listing(#core{self = Self} = Core0) ->
    Listed = listed(Core0),
    {Core1, SelfActions} = self_check(lists:member(Self, Listed), Core0),
    ListedSet = maps:from_list([{N, true} || N <- Listed, N =/= Self]),
    Takes = takes_part(Core1),
    %% Nodes listed now.
    {Core2, A1} = maps:fold(fun(N, _, {C, Acc}) ->
                                    {C1, A} = listed_node(N, Takes, C),
                                    {C1, A ++ Acc}
                            end, {Core1, []}, ListedSet),
    %% Records of nodes no longer listed.
    {Core3, A2} = maps:fold(fun(N, Rec, {C, Acc}) ->
                                    case is_map_key(N, ListedSet) of
                                        true -> {C, Acc};
                                        false ->
                                            {C1, A} = unlisted_node(N, Rec, C),
                                            {C1, A ++ Acc}
                                    end
                            end, {Core2, []}, Core2#core.nodes),
    {Core3, SelfActions ++ A1 ++ A2}.

%% Whether this node takes part (dials listed nodes): always without
%% self_listed; else while listed, and while its absence is unconfirmed.
takes_part(#core{self_state = out}) -> false;
takes_part(#core{self_state = new}) -> false;
takes_part(_) -> true.

self_check(_Listed, #core{self_listed = false} = Core) ->
    {Core, []};
self_check(true, #core{self_state = in} = Core) ->
    {Core, []};
self_check(true, #core{self_state = {absent, _}} = Core) ->
    {Core#core{self_state = in}, []};
self_check(true, #core{self_state = new} = Core) ->
    {Core#core{self_state = in}, []};
self_check(false, #core{self_state = new} = Core) ->
    %% Said once: the usual reason a cluster does not form is a node name
    %% that does not match what the sources list.
    {Core#core{self_state = out}, [{log, outside, #{listed => length(listed(Core))}}]};
self_check(true, #core{self_state = out} = Core) ->
    {Core#core{self_state = in}, [{log, listed, #{}}]};
self_check(false, #core{self_state = in, poll_interval = Poll} = Core0) ->
    %% Confirmed by the next listing (a poll interval and a lookup away),
    %% or, for a watched source that only speaks on change, by this timer.
    {Id, Core} = next_id(Core0),
    {Core#core{self_state = {absent, Id}}, [{arm, 2 * Poll, {confirm_absence, Id}}]};
self_check(false, #core{self_state = {absent, _}} = Core) ->
    %% A second listing without it: confirmed.
    leave(Core);
self_check(false, #core{self_state = out} = Core) ->
    {Core, []}.

%% The absence is confirmed: tell the members and drop the connections
%% (the shell decides which, see caravan_cluster); stop dialling.
leave(#core{prune = false, nodes = Nodes} = Core) ->
    %% prune => false: nothing is disconnected, this node only stops
    %% dialling; what stays connected is no longer ours to drop.
    Listed = listed(Core),
    Nodes1 = maps:fold(
               fun(N, #node{up = true, dial = false} = R, Acc) ->
                       Acc#{N => R#node{state = foreign, timer = undefined, attempts = 0}};
                  (N, #node{dial = true} = R, Acc) ->
                       Acc#{N => R#node{state = leaving, timer = undefined, attempts = 0}};
                  (N, R, Acc) ->
                       case lists:member(N, Listed) of
                           true -> Acc#{N => R#node{state = listed, attempts = 0,
                                                    timer = undefined}};
                           false -> Acc
                       end
               end, #{}, Nodes),
    {Core#core{self_state = out, nodes = Nodes1},
     [{log, outside, #{listed => length(Listed)}}]};
leave(#core{nodes = Nodes, sources = Sources} = Core) ->
    Listed = listed(Core),
    Members = [N || {N, #node{state = S, up = true}} <- maps:to_list(Nodes),
                    S =/= foreign],
    Nodes1 = maps:fold(
               fun(N, #node{state = foreign} = R, Acc) -> Acc#{N => R};
                  (N, #node{dial = true} = R, Acc) ->
                       Acc#{N => R#node{state = leaving, timer = undefined, attempts = 0}};
                  (N, R, Acc) ->
                       case lists:member(N, Listed) of
                           true -> Acc#{N => R#node{state = listed, attempts = 0,
                                                    timer = undefined, up = false}};
                           false -> Acc
                       end
               end, #{}, Nodes),
    Actions = case Members of
                  [] -> [{log, outside, #{listed => length(Listed), sources => map_size(Sources)}}];
                  _ -> [{leave, lists:sort(Members), scope(lists:sort(Members), Core)},
                        {log, left_cluster, #{dropped => length(Members)}}]
              end,
    {Core#core{self_state = out,
               nodes = maps:map(fun(_, #node{state = foreign} = R) -> R;
                                   (_, R) -> R#node{up = false}
                                end, Nodes1)},
     Actions}.

listed_node(N, Takes, #core{nodes = Nodes} = Core) ->
    Rec = maps:get(N, Nodes, #node{state = listed}),
    case Rec of
        #node{state = S} when S =:= connected; S =:= connecting; S =:= retrying;
                              S =:= departed ->
            {Core, []};
        #node{up = true} when not Takes ->
            {Core, []}; % outside: what is connected stays as it is
        #node{up = true} ->
            %% foreign, leaving, or listed: connected, so a member now.
            {put_node(N, Rec#node{state = connected, timer = undefined, attempts = 0}, Core),
             []};
        #node{dial = true} ->
            {put_node(N, Rec#node{state = connecting, timer = undefined}, Core), []};
        _ when Takes ->
            dial(N, Rec#node{attempts = 0}, Core);
        _ ->
            {put_node(N, Rec#node{state = listed, timer = undefined, attempts = 0}, Core), []}
    end.

unlisted_node(_N, #node{state = S}, Core) when S =:= foreign; S =:= leaving ->
    {Core, []};
unlisted_node(N, #node{state = connected} = Rec, Core) ->
    %% A member that left the listing: give it prune_grace to leave by itself.
    grace(N, Rec, Core);
unlisted_node(N, #node{dial = true} = Rec, Core) ->
    grace(N, Rec, Core);
unlisted_node(N, Rec, Core) ->
    %% listed, retrying, departed: kept for the grace, so that a node that
    %% dials us in the meantime (its view lags) is recognised as ours.
    grace(N, Rec, Core).

grace(N, Rec, #core{prune_grace = Grace} = Core0) ->
    {Id, Core} = next_id(Core0),
    {put_node(N, Rec#node{state = leaving, timer = Id, attempts = 0}, Core),
     [{arm, Grace, {prune, N, Id}}]}.

nodeup(N, #core{nodes = Nodes} = Core) ->
    case maps:find(N, Nodes) of
        error ->
            {put_node(N, #node{state = foreign, up = true}, Core), []};
        {ok, #node{state = leaving} = Rec} ->
            {put_node(N, Rec#node{up = true}, Core), []};
        {ok, #node{state = foreign} = Rec} ->
            {put_node(N, Rec#node{up = true}, Core), []};
        {ok, #node{state = listed} = Rec} when Core#core.self_state =:= out ->
            %% It dialled a node that left: ours, so pruned after the grace
            %% unless listed for us again.
            {C, A} = grace(N, Rec, Core),
            {put_node(N, (maps:get(N, C#core.nodes))#node{up = true}, C), A};
        {ok, #node{attempts = Attempts} = Rec} ->
            Log = case Rec#node.state of
                      connected -> [];
                      _ -> [{log, joined, #{node => N, failures => Attempts}}]
                  end,
            {put_node(N, Rec#node{state = connected, up = true, attempts = 0,
                                  timer = undefined}, Core), Log}
    end.

nodedown(N, #core{nodes = Nodes} = Core) ->
    case maps:find(N, Nodes) of
        error ->
            {Core, []};
        {ok, #node{state = foreign}} ->
            {drop_node(N, Core), []};
        {ok, #node{state = leaving} = Rec} ->
            {put_node(N, Rec#node{up = false}, Core), []};
        {ok, #node{state = departed} = Rec} ->
            {put_node(N, Rec#node{up = false}, Core), []}; % no redial, no alarm
        {ok, #node{state = connected, dial = true} = Rec} ->
            %% The dial in flight decides what comes next.
            {put_node(N, Rec#node{state = connecting, up = false}, Core), []};
        {ok, #node{state = connected} = Rec} ->
            case takes_part(Core) of
                true ->
                    {C, A} = retry(N, Rec#node{up = false, attempts = 0}, Core),
                    {C, [{log, nodedown, #{node => N}} | A]};
                false ->
                    {put_node(N, Rec#node{state = listed, up = false}, Core), []}
            end;
        {ok, Rec} ->
            {put_node(N, Rec#node{up = false}, Core), []}
    end.

connect_result(N, Ok, #core{nodes = Nodes} = Core) ->
    case maps:find(N, Nodes) of
        {ok, #node{dial = true} = Rec0} ->
            Rec = Rec0#node{dial = false},
            case {Rec#node.state, Ok} of
                {connecting, true} ->
                    {put_node(N, Rec#node{state = connected, up = true, attempts = 0}, Core),
                     [{log, joined, #{node => N, failures => Rec#node.attempts}}]};
                {connecting, false} ->
                    Attempts = Rec#node.attempts + 1,
                    {C, A} = retry(N, Rec#node{attempts = Attempts}, Core),
                    Log = case is_power_of_two(Attempts) of
                              true -> [{log, connect_failed, #{node => N, attempts => Attempts}}];
                              false -> []
                          end,
                    {C, Log ++ A};
                {leaving, _} when Rec#node.timer =:= undefined, Ok orelse Rec#node.up ->
                    %% Its grace ran out while the dial was in flight, and
                    %% it is connected (by this late dial, or it dialled
                    %% us): a grace more, then pruned.
                    {C, A} = grace(N, Rec, Core),
                    {put_node(N, (maps:get(N, C#core.nodes))#node{up = true}, C), A};
                {leaving, true} ->
                    {put_node(N, Rec#node{up = true}, Core), []};
                {leaving, false} when Rec#node.timer =:= undefined ->
                    {drop_node(N, Core), []};
                {_, true} ->
                    %% departed or listed: the link is up, nodeup follows.
                    {put_node(N, Rec#node{up = true}, Core), []};
                {_, false} ->
                    {put_node(N, Rec, Core), []}
            end;
        _ ->
            {Core, []} % not ours (or already settled)
    end.

departing(N, #core{nodes = Nodes} = Core) ->
    case maps:find(N, Nodes) of
        {ok, #node{state = S} = Rec} when S =/= foreign, S =/= leaving ->
            {put_node(N, Rec#node{state = departed, timer = undefined, attempts = 0}, Core),
             [{log, departing, #{node => N}}]};
        {ok, #node{state = leaving, up = true}} ->
            %% Unlisted before its notice came (a node that deregisters from
            %% Consul first): still a departure, not a loss. Its grace runs on.
            {Core, [{log, departing, #{node => N}}]};
        _ ->
            {Core, []}
    end.

timer({retry, N, Id}, #core{nodes = Nodes} = Core) ->
    case maps:find(N, Nodes) of
        {ok, #node{state = retrying, timer = Id, dial = false} = Rec} ->
            dial(N, Rec, Core);
        _ ->
            {Core, []} % stale: the node moved on since
    end;
timer({prune, N, Id}, #core{nodes = Nodes, prune = Prune} = Core) ->
    case maps:find(N, Nodes) of
        {ok, #node{state = leaving, timer = Id} = Rec} ->
            Actions = case Rec#node.up andalso Prune of
                          true when Core#core.self_state =:= out ->
                              [{leave, [N], scope([N], Core)}, {log, pruned, #{node => N}}];
                          true ->
                              [{disconnect, N}, {log, pruned, #{node => N}}];
                          false ->
                              []
                      end,
            case Rec of
                #node{dial = true} ->
                    Up = Rec#node.up andalso Actions =:= [],
                    {put_node(N, Rec#node{timer = undefined, up = Up}, Core), Actions};
                #node{up = true} when not Prune ->
                    %% prune => false: it stays connected, no longer ours.
                    {put_node(N, Rec#node{state = foreign, timer = undefined}, Core), Actions};
                #node{up = true} ->
                    %% Disconnected now; remembered one more grace, so that
                    %% if it dials back (its sources still list us) it is
                    %% pruned again rather than kept as a stranger.
                    {C, A} = grace(N, Rec#node{up = false}, Core),
                    {C, Actions ++ A};
                _ ->
                    {drop_node(N, Core), Actions}
            end;
        _ ->
            {Core, []}
    end;
timer({confirm_absence, Id}, #core{self_state = {absent, Id}} = Core) ->
    leave(Core);
timer({confirm_absence, _}, Core) ->
    {Core, []}.

%%%---------------------------------------------------------------------------
%%% Internal
%%%---------------------------------------------------------------------------

dial(N, Rec, Core) ->
    {put_node(N, Rec#node{state = connecting, dial = true, timer = undefined}, Core),
     [{connect, N}]}.

retry(N, #node{attempts = Attempts} = Rec, #core{retry_min = Min, retry_max = Max} = Core0) ->
    Delay = min(Max, Min bsl min(max(Attempts, 1) - 1, 16)),
    {Id, Core} = next_id(Core0),
    {put_node(N, Rec#node{state = retrying, timer = Id}, Core),
     [{arm, Delay, {retry, N, Id}}]}.

next_id(#core{seq = S} = Core) ->
    {S + 1, Core#core{seq = S + 1}}.

put_node(N, Rec, #core{nodes = Nodes} = Core) ->
    Core#core{nodes = Nodes#{N => Rec}}.

drop_node(N, #core{nodes = Nodes} = Core) ->
    Core#core{nodes = maps:remove(N, Nodes)}.

is_power_of_two(N) -> N band (N - 1) =:= 0.

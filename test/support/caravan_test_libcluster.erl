%%% A stand-in for libcluster 3.5's Cluster.Supervisor (hex is unreachable,
%%% so libcluster itself cannot be installed). It follows libcluster's
%%% source (lib/supervisor.ex, lib/strategy/state.ex, lib/strategy/
%%% strategy.ex at 3.5.0): for each topology it builds
%%% %Cluster.Strategy.State{topology, connect, disconnect, list_nodes,
%%% config, meta} with libcluster's defaults ({net_kernel, connect_node,
%%% []}, {erlang, disconnect_node, []}, {erlang, nodes, [connected]}), and
%%% starts Strategy.child_spec([State]) under a one_for_one supervisor.
%%% connect/1, disconnect/1 and list_nodes/0 are MFAs a topology can name:
%%% they record each call, then do what libcluster's defaults do.
%%%
%%% start_app/1 puts the supervisor in an application of its own that
%%% needs caravan, as a Mix app holding Cluster.Supervisor in its tree:
%%% started after caravan, it is stopped before caravan when the node
%%% stops (applications stop newest first).
-module(caravan_test_libcluster).
-behaviour(supervisor).
-behaviour(application).

-export([start/1]).
-export([start_app/1]).
-export([start/2]).
-export([stop/1]).
-export([connect/1]).
-export([disconnect/1]).
-export([list_nodes/0]).
-export([calls/0]).
-export([list_nodes_calls/0]).
-export([connects/0]).
-export([init/1]).

%% @doc Starts the topologies (libcluster's keyword-list form) in a
%% supervisor that outlives the caller.
-spec start([{atom(), [{atom(), term()}]}]) -> {ok, pid()}.
start(Topologies) ->
    Self = self(),
    spawn(fun() ->
                  process_flag(trap_exit, true),
                  %% Owned here, so the record outlives the processes that call.
                  ets:new(?MODULE, [named_table, public, ordered_set]),
                  Self ! {started, supervisor:start_link(?MODULE, Topologies)},
                  receive stop -> ok end
          end),
    receive {started, Result} -> Result after 10000 -> error(libcluster_stand_in_stuck) end.

%% @doc Starts the topologies in application caravan_test_libcluster_app
%% (which depends on caravan, so it starts after and stops before it).
-spec start_app([{atom(), [{atom(), term()}]}]) -> ok.
start_app(Topologies) ->
    {ok, _} = start_table(),
    App = caravan_test_libcluster_app,
    ok = application:load({application, App,
                           [{description, "a Mix app's tree with Cluster.Supervisor"},
                            {vsn, "1"}, {modules, [?MODULE]}, {registered, []},
                            {applications, [kernel, stdlib, caravan]},
                            {mod, {?MODULE, Topologies}}]}),
    {ok, _} = application:ensure_all_started(App),
    ok.

%% The call record's table, owned by a process of its own.
start_table() ->
    Self = self(),
    Pid = spawn(fun() ->
                        ets:new(?MODULE, [named_table, public, ordered_set]),
                        Self ! table_ready,
                        receive stop -> ok end
                end),
    receive table_ready -> {ok, Pid} after 10000 -> error(no_table) end.

-spec start(application:start_type(), [{atom(), [{atom(), term()}]}]) -> {ok, pid()}.
start(_Type, Topologies) ->
    supervisor:start_link(?MODULE, Topologies).

-spec stop(term()) -> ok.
stop(_State) ->
    ok.

-spec connect(node()) -> boolean() | ignored.
connect(Node) ->
    record(connect, Node),
    net_kernel:connect_node(Node).

-spec disconnect(node()) -> boolean() | ignored.
disconnect(Node) ->
    record(disconnect, Node),
    erlang:disconnect_node(Node).

-spec list_nodes() -> [node()].
list_nodes() ->
    try ets:update_counter(?MODULE, list_nodes, 1, {list_nodes, 0})
    catch error:badarg -> ok
    end,
    erlang:nodes(connected).

%% @doc How many times list_nodes/0 was called.
-spec list_nodes_calls() -> non_neg_integer().
list_nodes_calls() ->
    try ets:lookup(?MODULE, list_nodes) of
        [{list_nodes, N}] -> N;
        [] -> 0
    catch error:badarg -> 0
    end.

%% @doc Every connect and disconnect call, oldest first.
-spec calls() -> [{connect | disconnect, node()}].
calls() ->
    try [{F, N} || {_, F, N} <- ets:tab2list(?MODULE)]
    catch error:badarg -> []
    end.

-spec connects() -> non_neg_integer().
connects() ->
    length([C || {connect, _} = C <- calls()]).

record(Fun, Node) ->
    try ets:insert(?MODULE, {erlang:unique_integer([monotonic]), Fun, Node})
    catch error:badarg -> ok
    end.

-spec init([{atom(), [{atom(), term()}]}]) ->
          {ok, {supervisor:sup_flags(), [supervisor:child_spec()]}}.
init(Topologies) ->
    Children = [begin
                    Strategy = proplists:get_value(strategy, Spec),
                    Strategy:child_spec([state(Topology, Spec)])
                end || {Topology, Spec} <- Topologies],
    {ok, {#{strategy => one_for_one}, Children}}.

%% Cluster.Supervisor's build_initial_state/1 (3.5.0).
state(Topology, Spec) ->
    #{'__struct__' => 'Elixir.Cluster.Strategy.State',
      topology => Topology,
      connect => proplists:get_value(connect, Spec, {net_kernel, connect_node, []}),
      disconnect => proplists:get_value(disconnect, Spec, {erlang, disconnect_node, []}),
      list_nodes => proplists:get_value(list_nodes, Spec, {erlang, nodes, [connected]}),
      config => proplists:get_value(config, Spec, []),
      meta => nil}.

%%% A stand-in for libcluster's Cluster.Supervisor (hex is unreachable, so
%%% libcluster itself cannot be installed): it follows libcluster's
%%% documented contract (lib/supervisor.ex): for each topology it builds
%%% %Cluster.Strategy.State{topology, connect, disconnect, list_nodes,
%%% config, meta} with libcluster's defaults, and starts
%%% Strategy.child_spec([State]) under a one_for_one supervisor.
-module(caravan_test_libcluster).
-behaviour(supervisor).

-export([start/1]).
-export([connect/1]).
-export([connects/0]).
-export([init/1]).

%% @doc Starts the topologies (libcluster's keyword-list form) in a
%% supervisor that outlives the caller.
-spec start([{atom(), [{atom(), term()}]}]) -> {ok, pid()}.
start(Topologies) ->
    Self = self(),
    spawn(fun() ->
                  process_flag(trap_exit, true),
                  %% Owned here, so the count outlives the processes that connect.
                  ets:new(?MODULE, [named_table, public]),
                  Self ! {started, supervisor:start_link(?MODULE, Topologies)},
                  receive stop -> ok end
          end),
    receive {started, Result} -> Result after 10000 -> error(libcluster_stand_in_stuck) end.

%% @doc A connect MFA that counts, then does what libcluster's default does.
-spec connect(node()) -> boolean() | ignored.
connect(Node) ->
    ets:update_counter(?MODULE, connects, 1, {connects, 0}),
    net_kernel:connect_node(Node).

-spec connects() -> non_neg_integer().
connects() ->
    case catch ets:lookup(?MODULE, connects) of
        [{connects, N}] -> N;
        _ -> 0
    end.

init(Topologies) ->
    Children = [begin
                    Strategy = proplists:get_value(strategy, Spec),
                    Strategy:child_spec([state(Topology, Spec)])
                end || {Topology, Spec} <- Topologies],
    {ok, {#{strategy => one_for_one}, Children}}.

state(Topology, Spec) ->
    #{'__struct__' => 'Elixir.Cluster.Strategy.State',
      topology => Topology,
      connect => proplists:get_value(connect, Spec, {net_kernel, connect_node, []}),
      disconnect => proplists:get_value(disconnect, Spec, {erlang, disconnect_node, []}),
      list_nodes => proplists:get_value(list_nodes, Spec, {erlang, nodes, [connected]}),
      config => proplists:get_value(config, Spec, []),
      meta => nil}.

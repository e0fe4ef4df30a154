%%% @doc caravan as a libcluster strategy, for Elixir projects that already
%%% run libcluster's Cluster.Supervisor:
%%%
%%% ```
%%% config :libcluster, topologies: [
%%%   app: [strategy: :caravan_libcluster,
%%%         config: [sources: [{:consul, %{service: "app", basename: "app"}}]]]]
%%% '''
%%%
%%% It follows libcluster's Cluster.Strategy contract: the supervisor calls
%%% child_spec([State]) and then start_link([State]), State being a
%%% %Cluster.Strategy.State{} (topology, connect, disconnect, list_nodes,
%%% config, meta); nodes are connected and disconnected through the MFAs it
%%% carries. The config keyword list takes caravan_cluster's keys.
-module(caravan_libcluster).

-export([child_spec/1]).
-export([child_spec/2]).
-export([start_link/1]).
-export([cluster_config/2]).

-spec child_spec([map()]) -> supervisor:child_spec().
child_spec(Args) ->
    child_spec(?MODULE, Args).

%% @doc The child spec of strategy Module (this one, or a module that
%% translates another config into caravan_cluster's).
-spec child_spec(module(), [map()]) -> supervisor:child_spec().
child_spec(Module, [State]) ->
    #{id => {Module, maps:get(topology, State)},
      start => {Module, start_link, [[State]]},
      restart => permanent,
      shutdown => 5000}.

-spec start_link([map()]) -> {ok, pid()} | {error, term()}.
start_link([#{topology := Topology, config := Config} = State]) ->
    caravan_cluster:start_link(Topology, cluster_config(State, maps:from_list(Config))).

%% @doc caravan_cluster's config from a libcluster state and the strategy's
%% own options (already a map).
-spec cluster_config(map(), map()) -> caravan_cluster:config().
cluster_config(State, Options) ->
    Mfas = maps:with([connect, disconnect, list_nodes], State),
    maps:merge(maps:with([sources, source, poll_interval, prune, self_listed, retry_min,
                          retry_max], Options),
               Mfas).

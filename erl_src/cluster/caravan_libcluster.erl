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
%%% carries. The config keyword list takes caravan_cluster's keys
%%% (prune_grace included). A key caravan does not know is logged once, by
%%% name, and ignored: libcluster mixes keys of its own into a topology,
%%% so refusing them would refuse working configs.
%%%
%%% A cluster started this way is the same as one caravan starts: it sends
%%% departure notices when the node stops (caravan's prep_stop finds it),
%%% shows in caravan:status() (`started_by => libcluster'), dials through
%%% the topology's connect MFA (skipping nodes its list_nodes MFA has) and
%%% disconnects through its disconnect MFA, logs libcluster's lines
%%% (`[libcluster:TOPOLOGY] connected to :"app-4370@10.0.0.5"'; one line
%%% per event, caravan's own lines left out) and, when the telemetry library
%%% is loaded, emits libcluster 3.5's events ([libcluster, connect_node |
%%% disconnect_node, ok | error]) instead of caravan's. A State built by
%%% hand may leave the MFAs nil (libcluster's struct defaults): nil is
%%% libcluster's default MFA.
-module(caravan_libcluster).

-include_lib("kernel/include/logger.hrl").

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
start_link([#{topology := Topology} = State]) ->
    Config = case maps:get(config, State, []) of
                 nil -> [];
                 C -> C
             end,
    %% A keyword list: the first of duplicate keys counts (Keyword.get/2);
    %% maps:from_list/1 keeps the last.
    caravan_cluster:start_link(Topology,
                               cluster_config(State, maps:from_list(lists:reverse(Config)))).

%% @doc caravan_cluster's config from a libcluster state and the strategy's
%% own options (already a map).
-spec cluster_config(map(), map()) -> caravan_cluster:config().
cluster_config(State, Options) ->
    %% %Cluster.Strategy.State{} defaults connect, disconnect and list_nodes
    %% to nil (lib/strategy/state.ex); only Cluster.Supervisor fills them
    %% in. A state built by hand (1.0.1's own dns_strategy_test does) leaves
    %% them nil: nil is libcluster's default MFA, caravan_cluster's too.
    Mfas = maps:filter(fun(_, V) -> V =/= nil end,
                       maps:with([connect, disconnect, list_nodes], State)),
    Known = caravan_cluster_config:known_keys() -- [connect, disconnect, list_nodes, libcluster],
    warn_unknown(maps:get(topology, State, undefined), maps:keys(Options) -- Known),
    maps:merge(maps:with(Known, Options), Mfas#{libcluster => true}).

%% Once per topology and key for the node's lifetime (a restarted strategy
%% does not repeat it).
warn_unknown(Topology, Keys) ->
    _ = [begin
         persistent_term:put({?MODULE, warned, Topology, K}, true),
         ?LOG_WARNING("[libcluster:~s] caravan ignores config key ~0p (not one of ~0p)",
                      [Topology, K, caravan_cluster_config:known_keys()],
                      #{caravan => cluster, event => unknown_key, key => K})
     end || K <- Keys, persistent_term:get({?MODULE, warned, Topology, K}, false) =:= false],
    ok.

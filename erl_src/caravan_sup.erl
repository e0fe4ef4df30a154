%%% @doc Top supervisor: the C program instance used for lookups (the
%%% epmd-side instance lives under kernel, see caravan_epmd), watches, this
%%% node's registrations, and clusters (started last: they use them all).
-module(caravan_sup).
-behaviour(supervisor).

-export([start_link/0]).
-export([init/1]).

-spec start_link() -> {ok, pid()} | {error, term()}.
start_link() ->
    supervisor:start_link({local, ?MODULE}, ?MODULE, []).

-spec init([]) -> {ok, {supervisor:sup_flags(), [supervisor:child_spec()]}}.
init([]) ->
    Options = case caravan_config:port_program() of
                  {ok, Path} -> #{program => Path};
                  {error, no_priv_dir} -> #{}
              end,
    Lookup = #{id => caravan_lookup,
               start => {caravan_port, start_link, [caravan_lookup, Options]},
               shutdown => 5000},
    Watches = #{id => caravan_watch_sup,
                start => {caravan_watch_sup, start_link, []},
                type => supervisor},
    %% Every cluster joins this pg scope, whoever started it (caravan or
    %% libcluster): caravan:status() and prep_stop find them there.
    Registry = #{id => caravan_clusters,
                 start => {pg, start_link, [caravan_clusters]}},
    %% This node's own registrations (Consul agent): before the clusters,
    %% so that a cluster reading the same service finds this node soonest.
    Registrations = #{id => caravan_register_sup,
                      start => {caravan_register_sup, start_link, []},
                      type => supervisor},
    Clusters = #{id => caravan_cluster_sup,
                 start => {caravan_cluster_sup, start_link, []},
                 type => supervisor},
    {ok, {#{strategy => one_for_one, intensity => 5, period => 10},
          [Lookup, Watches, Registry, Registrations, Clusters]}}.

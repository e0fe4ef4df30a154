%%% @doc Caravan 1.0.1's libcluster strategy, kept so its users' configs
%%% work unchanged:
%%%
%%% ```
%%% config :libcluster, topologies: [
%%%   caravan: [strategy: Caravan.Cluster.DnsStrategy,
%%%             config: [query: "app-dist.service.consul", node_sname: "app",
%%%                      poll_interval: 5_000]]]
%%% '''
%%%
%%% `query' is looked up over DNS and every SRV record becomes
%%% `node_sname-PORT@ADDRESS'. Like 1.0.1 it asks the host's resolver
%%% (/etc/resolv.conf) unless `dns_servers: ["127.0.0.1:8600"]' is given.
%%% Unlike 1.0.1 it sees every instance (1.0.1 saw at most 3 from a default
%%% Consul) and names nodes by address rather than by Consul node name.
-module('Elixir.Caravan.Cluster.DnsStrategy').

-export([child_spec/1]).
-export([start_link/1]).

-define(DEFAULT_POLL_MS, 5000).

-spec child_spec([map()]) -> supervisor:child_spec().
child_spec(Args) ->
    caravan_libcluster:child_spec(?MODULE, Args).

-spec start_link([map()]) -> {ok, pid()} | {error, term()}.
start_link([#{topology := Topology, config := Config} = State]) ->
    Options = maps:from_list(Config),
    Query = maps:get(query, Options),
    Servers = case maps:find(dns_servers, Options) of
                  {ok, S} -> S;
                  error -> system
              end,
    Dns = #{query => Query, basename => maps:get(node_sname, Options), servers => Servers},
    %% 1.0.1 connected to every listed node, whether or not it was listed.
    Cluster = #{sources => [{dns, Dns}], self_listed => false,
                poll_interval => maps:get(poll_interval, Options, ?DEFAULT_POLL_MS)},
    caravan_cluster:start_link(Topology, caravan_libcluster:cluster_config(State, Cluster)).

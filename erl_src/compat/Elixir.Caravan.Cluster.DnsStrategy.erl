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
%%% As in 1.0.1:
%%% - every SRV record of `query' becomes `node_sname-PORT@HOST', HOST being
%%%   the record's target host name (trailing dot removed); nodes must run
%%%   with `-name' on exactly that host name. `name_by: :address' names them
%%%   by the target's address instead (caravan's own strategy does that);
%%% - it connects and NEVER disconnects (prune => false): 1.0.1 only called
%%%   libcluster's connect_nodes/4. A node gone from DNS, or an NXDOMAIN,
%%%   leaves every connection as it is. Disconnecting would be worse than
%%%   useless: under OTP 25's prevent_overlapping_partitions one disconnect
%%%   makes global disconnect every node from every other. Pruning is there
%%%   for whoever asks, through caravan's own strategy (caravan_libcluster);
%%% - without `dns_servers' it asks the nameservers inet_db is configured
%%%   with (erl_inetrc), else resolv.conf, as inet_res did;
%%% - `dns_client: Module' (a Caravan.DnsClient) replaces the lookup.
%%%
%%% Unlike 1.0.1 it asks over TCP, so it sees every instance (1.0.1 saw at
%%% most 3 from a default Consul), and it connects to nodes one poll after
%%% they appear, retrying refused ones with backoff (caravan_cluster).
-module('Elixir.Caravan.Cluster.DnsStrategy').

-include_lib("kernel/include/logger.hrl").

-export([child_spec/1]).
-export([start_link/1]).
-export([find_nodes/1]).
-export([cluster_options/1]).
-export([client_discover/2]).
-export([connect_nodes/4]).

-define(INET_RES, 'Elixir.Caravan.DnsClient.InetRes').

-spec child_spec([map()]) -> supervisor:child_spec().
child_spec(Args) ->
    caravan_libcluster:child_spec(?MODULE, Args).

-spec start_link([map()]) -> {ok, pid()} | {error, term()}.
start_link([#{topology := Topology} = State]) ->
    Config = 'Elixir.Caravan.Cluster.Config':new(State),
    caravan_cluster:start_link(Topology,
                               caravan_libcluster:cluster_config(State, cluster_options(Config))).

%% @doc caravan_cluster's options for a 1.0.1 config: one source, never
%% prune, connect to whatever is listed.
-spec cluster_options('Elixir.Caravan.Cluster.Config':t()) -> map().
cluster_options(#{query := Query, node_sname := Sname, dns_client := Client,
                  poll_interval := Poll} = Config) ->
    Base = sname(Sname),
    Source = case Client of
                 ?INET_RES ->
                     {dns, #{query => Query, basename => Base,
                             servers => servers(Config),
                             name_by => maps:get(name_by, Config, target)}};
                 _ ->
                     %% The cluster's callback source: polled like dns.
                     {callback, #{basename => Base,
                                  discover => fun() -> client_discover(Client, Query) end}}
             end,
    #{sources => [Source], prune => false, self_listed => false, poll_interval => Poll}.

%% @doc One poll of a user's Caravan.DnsClient, in the callback source's
%% terms: `{ok, [{Host, Port}]}'; a client that crashes or answers
%% something else is an error (the members stand), not a crash.
-spec client_discover(module(), term()) ->
          {ok, [{binary() | string(), inet:port_number()}]} | {error, term()}.
client_discover(Client, Query) ->
    try Client:get_nodes(query(Query)) of
        Pairs when is_list(Pairs) ->
            case [P || P <- Pairs, not is_pair(P)] of
                %% Port 0 (an SRV record's "not here") names no node
                %% the callback source accepts; 1.0.1 dialled it in vain.
                [] -> {ok, [{Host, Port} || {Port, Host} <- Pairs, Port =/= 0]};
                Bad -> {error, {dns_client, Client, {bad_records, Bad}}}
            end;
        Other ->
            {error, {dns_client, Client, {bad_return, Other}}}
    catch
        Class:Reason ->
            {error, {dns_client, Client, {Class, Reason}}}
    end.

%% @doc 1.0.1's find_nodes/1: looks the query up once and connects to the
%% nodes found (not this one) through the config's connect MFA, as
%% libcluster's Cluster.Strategy.connect_nodes/4 does (and through it,
%% when libcluster is loaded: its log lines and telemetry). `ok', or
%% `{error, [{Node, false | ignored}]}' for nodes that did not connect.
-spec find_nodes('Elixir.Caravan.Cluster.Config':t()) ->
          ok | {error, [{node(), false | ignored}]}.
find_nodes(#{query := Query, node_sname := Sname, dns_client := Client, topology := Topology,
             connect := Connect, list_nodes := ListNodes} = Config) ->
    Base = sname(Sname),
    Pairs = case Client of
                ?INET_RES -> ?INET_RES:get_nodes(query(Query),
                                                 #{servers => servers(Config),
                                                   name_by => maps:get(name_by, Config, target)});
                _ -> Client:get_nodes(query(Query))
            end,
    Nodes = lists:delete(node(), [caravan_name:node(Base, Port, Host) || {Port, Host} <- Pairs]),
    connect_nodes(Topology, default(Connect, {net_kernel, connect_node, []}),
                  default(ListNodes, {erlang, nodes, [connected]}), Nodes).

%% @doc libcluster's Cluster.Strategy.connect_nodes/4 when libcluster is
%% loaded; otherwise the same steps: connect each node not in list_nodes,
%% log as libcluster does, collect the failures.
-spec connect_nodes(term(), {module(), atom(), list()}, {module(), atom(), list()}, [node()]) ->
          ok | {error, [{node(), false | ignored}]}.
connect_nodes(Topology, Connect, ListNodes, Nodes) ->
    Libcluster = 'Elixir.Cluster.Strategy',
    case code:ensure_loaded(Libcluster) of
        {module, _} ->
            Libcluster:connect_nodes(Topology, Connect, ListNodes, Nodes);
        {error, _} ->
            {CM, CF, CA} = Connect,
            {LM, LF, LA} = ListNodes,
            Have = apply(LM, LF, LA),
            Bad = lists:foldl(
                    fun(Node, Acc) ->
                            case apply(CM, CF, CA ++ [Node]) of
                                true ->
                                    ?LOG_INFO("[libcluster:~ts] connected to ~0p",
                                              [text(Topology), Node]),
                                    Acc;
                                Failed ->
                                    ?LOG_WARNING("[libcluster:~ts] unable to connect to ~0p",
                                                 [text(Topology), Node]),
                                    [{Node, Failed} | Acc]
                            end
                    end, [], [N || N <- Nodes, N =/= node(), not lists:member(N, Have)]),
            case Bad of
                [] -> ok;
                _ -> {error, Bad}
            end
    end.

%%% internal

%% A nil MFA (a %Cluster.Strategy.State{} built by hand) is libcluster's
%% default, as Cluster.Supervisor fills it in.
default(nil, Mfa) -> Mfa;
default(Mfa, _) -> Mfa.

%% dns_servers if given, else inet_db's nameservers, else resolv.conf; one
%% server written as a string is that one (caravan_dns:servers_or_system/1).
%% Before, a binary was ignored for the host's resolvers and a charlist read
%% as a list of numbers. Anything else goes on to the source's check, which
%% refuses it at start.
servers(Config) ->
    caravan_dns:servers_or_system(maps:get(dns_servers, Config, nil)).

is_pair({Port, Host}) ->
    is_integer(Port) andalso Port >= 0 andalso Port =< 65535 andalso
        (is_binary(Host) orelse io_lib:printable_unicode_list(Host));
is_pair(_) ->
    false.

%% node_sname as text: 1.0.1 interpolated it (`:"#{node_sname}-..."'), so
%% an atom, a charlist or a number worked as well as a string.
sname(Sname) when is_atom(Sname) -> atom_to_binary(Sname, utf8);
sname(Sname) when is_integer(Sname) -> integer_to_binary(Sname);
sname(Sname) -> Sname.

%% 1.0.1 passed the query on as configured (Elixir configs give binaries).
query(Query) when is_list(Query) -> unicode:characters_to_binary(Query);
query(Query) -> Query.

text(Term) when is_atom(Term) -> atom_to_list(Term);
text(Term) -> io_lib:format("~tp", [Term]).

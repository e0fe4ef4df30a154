%%% @doc The default `Caravan.DnsClient', under 1.0.1's name. 1.0.1 asked
%%% `inet_res'; this asks the C program (TCP, so a default Consul's
%%% three-answer UDP limit does not cap the cluster), with the same servers
%%% inet_res would have used: those inet_db is configured with (erl_inetrc,
%%% `-kernel inetrc'), else the host's resolv.conf.
%%%
%%% Like 1.0.1, a failed lookup is an empty list. Needs the caravan
%%% application running (its lookup program).
-module('Elixir.Caravan.DnsClient.InetRes').
-behaviour('Elixir.Caravan.DnsClient').

-export([get_nodes/1]).
-export([get_nodes/2]).

-spec get_nodes(binary()) -> [{inet:port_number(), binary()}].
get_nodes(Name) ->
    get_nodes(Name, #{}).

%% @doc As get_nodes/1 with options: `servers' (`["IP:PORT"]', or one
%% such string; default inet_db's nameservers, else resolv.conf), `name_by' (`target', the
%% default, gives SRV target host names as 1.0.1 did; `address' gives each
%% target's address as text, IPv4 first as caravan_dns:discover/1 names
%% nodes, leaving out targets without one).
-spec get_nodes(binary() | string(), #{servers => [string() | binary()] | string() | binary()
                                                  | system,
                                       name_by => target | address}) ->
          [{inet:port_number(), binary()}].
get_nodes(Name, Options) ->
    Servers = caravan_dns:servers_or_system(maps:get(servers, Options, nil)),
    case caravan_dns:lookup_srv(Name, #{servers => Servers}) of
        {ok, Records} ->
            case maps:get(name_by, Options, target) of
                target ->
                    [{Port, caravan_dns:target_host(T)} || #{port := Port, target := T} <- Records];
                address ->
                    %% As caravan_dns:discover/1 names them: IPv4 first.
                    [{Port, list_to_binary(inet:ntoa(A))}
                     || #{port := Port, addresses := As} <- Records,
                        A <- [caravan_dns:node_address(As, any)], A =/= none]
            end;
        {error, _} ->
            []
    end.

%%% @doc Caravan 1.0.1's `Caravan.Cluster.Config': the config of
%%% Caravan.Cluster.DnsStrategy as an Elixir struct (a map whose
%%% `__struct__' is this module), built from libcluster's
%%% `%Cluster.Strategy.State{}'.
%%%
%%% 1.0.1's fields, with 1.0.1's defaults: topology, connect, disconnect,
%%% list_nodes (from the state), query and node_sname (required: a missing
%%% one raises KeyError, as Keyword.fetch!/2 did), dns_client
%%% (Caravan.DnsClient.InetRes), poll_interval (5000). caravan adds two:
%%% dns_servers (`["IP:PORT"]', default nil: inet_db's nameservers, else
%%% resolv.conf) and name_by (`target', default: nodes are
%%% `node_sname-PORT@SRV-TARGET-HOST' as in 1.0.1; `address': by address).
-module('Elixir.Caravan.Cluster.Config').

-export([new/1]).
-export(['__struct__'/0]).
-export(['__struct__'/1]).

-export_type([t/0]).

-type t() :: #{'__struct__' := 'Elixir.Caravan.Cluster.Config',
               topology := term(),
               query := term(),
               dns_client := module(),
               node_sname := term(),
               connect := term(),
               disconnect := term(),
               list_nodes := term(),
               poll_interval := term(),
               dns_servers := [string() | binary()] | nil,
               name_by := target | address}.

-define(DEFAULT_POLL_MS, 5000).
-define(DEFAULT_CLIENT, 'Elixir.Caravan.DnsClient.InetRes').

%% @doc The struct with every field at its default (what `%Config{}' gives).
-spec '__struct__'() -> t().
'__struct__'() ->
    #{'__struct__' => ?MODULE, topology => nil, query => nil, dns_client => nil,
      node_sname => nil, connect => nil, disconnect => nil, list_nodes => nil,
      poll_interval => nil, dns_servers => nil, name_by => target}.

%% @doc The struct with the given fields set (what `struct(Config, kv)' gives).
-spec '__struct__'([{atom(), term()}] | map()) -> t().
'__struct__'(Fields) ->
    Base = '__struct__'(),
    maps:merge(Base, maps:with(maps:keys(Base) -- ['__struct__'], to_map(Fields))).

%% @doc The config from a libcluster state (a map with topology, connect,
%% disconnect, list_nodes and config, a keyword list).
-spec new(map()) -> t().
new(#{config := Config} = State) ->
    '__struct__'(#{topology => maps:get(topology, State, nil),
                   connect => maps:get(connect, State, nil),
                   disconnect => maps:get(disconnect, State, nil),
                   list_nodes => maps:get(list_nodes, State, nil),
                   query => fetch(query, Config),
                   node_sname => fetch(node_sname, Config),
                   poll_interval => proplists:get_value(poll_interval, Config, ?DEFAULT_POLL_MS),
                   dns_client => proplists:get_value(dns_client, Config, ?DEFAULT_CLIENT),
                   dns_servers => proplists:get_value(dns_servers, Config, nil),
                   name_by => proplists:get_value(name_by, Config, target)}).

%% Keyword.fetch!/2: the first value, or an Elixir KeyError.
fetch(Key, Config) ->
    case lists:keyfind(Key, 1, Config) of
        {Key, Value} -> Value;
        false -> error(#{'__struct__' => 'Elixir.KeyError', '__exception__' => true,
                         key => Key, term => Config, message => nil})
    end.

to_map(Fields) when is_map(Fields) -> Fields;
to_map(Fields) when is_list(Fields) -> maps:from_list(Fields).

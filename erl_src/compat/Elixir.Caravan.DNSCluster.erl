%%% @doc A drop-in for Phoenix's `DNSCluster' (dns_cluster 0.2), for Elixir
%%% applications: one line changes in `application.ex',
%%%
%%% ```
%%% {Caravan.DNSCluster, query: Application.get_env(:my_app, :dns_cluster_query) || :ignore}
%%% '''
%%%
%%% and the node runs a caravan cluster (caravan_cluster) whose sources are
%%% DNS A/AAAA (and SRV) lookups of the queries: it connects, retries with
%%% backoff, prunes nodes gone from DNS, announces its departure when it
%%% stops, and shows in caravan:status().
%%%
%%% dns_cluster's options, as its lib/dns_cluster.ex reads and checks them:
%%% - `query' (required): a string, `{Basename, Query}', or a list of them;
%%%   `:ignore' makes start_link return `ignore' (no cluster: dev without
%%%   DNS_CLUSTER_QUERY). A query alone uses this node's basename; a
%%%   tuple's Basename names the nodes of that query (`"remote-4370"'
%%%   gives them that port too, `"remote"' this node's port).
%%% - `resource_types': a non-empty subset of `[:a, :aaaa, :srv]', default
%%%   `[:a, :aaaa]'.
%%% - `interval': ms between lookups, default 5000 (caravan's poll_interval).
%%% - `connect_timeout': ms, default 10000. Taken and checked; caravan's
%%%   connection attempts are bounded by the kernel's net_setuptime.
%%% - `log': `false' or a Logger level. Taken and checked; caravan logs
%%%   joins and leaves itself.
%%% - `name': the cluster's name, default `DNSCluster'.
%%% caravan adds `dns_servers' (`["IP:PORT"]', asked the name as written;
%%% default the host's resolv.conf with its search list, as inet_res, and
%%% so dns_cluster, asks).
%%%
%%% A missing `query', or an option of the wrong type, raises ArgumentError
%%% naming the option, as dns_cluster does for `query' and `resource_types';
%%% so does an option dns_cluster does not have (a typo would be silent).
-module('Elixir.Caravan.DNSCluster').

-export([child_spec/1]).
-export([start_link/1]).
-export([cluster_config/1]).

-define(KEYS, [query, resource_types, interval, connect_timeout, log, name, dns_servers]).
-define(TYPES, [a, aaaa, srv]).
-define(LEVELS, [emergency, alert, critical, error, warning, warn, notice, info, debug]).

%% @doc The child spec Elixir's supervisors ask for: `{Caravan.DNSCluster, Opts}'.
-spec child_spec(list()) -> supervisor:child_spec().
child_spec(Opts) ->
    #{id => ?MODULE, start => {?MODULE, start_link, [Opts]}, type => worker,
      restart => permanent, shutdown => 5000}.

%% @doc Starts the cluster, linked to the caller; `ignore' for `query:
%% :ignore'. Raises ArgumentError for a bad option.
-spec start_link(list()) -> {ok, pid()} | ignore | {error, term()}.
start_link(Opts) ->
    case cluster_config(Opts) of
        ignore -> ignore;
        {Name, Config} -> caravan_cluster:start_link(Name, Config)
    end.

%% @doc The cluster's name and caravan_cluster config for these options,
%% or `ignore'. Raises ArgumentError as start_link/1 does.
-spec cluster_config(list()) -> ignore | {atom(), caravan_cluster:config()}.
cluster_config(Opts) when is_list(Opts) ->
    case lists:all(fun(O) -> is_tuple(O) andalso tuple_size(O) =:= 2
                                 andalso is_atom(element(1, O)) end, Opts) of
        true -> ok;
        false -> argument_error("expected a keyword list of options, got: ~0p", [Opts])
    end,
    case [K || {K, _} <- Opts, not lists:member(K, ?KEYS)] of
        [] -> ok;
        [Unknown | _] -> argument_error("unknown option :~s (Caravan.DNSCluster takes ~s)",
                                        [Unknown, lists:join(", ", [[$: | atom_to_list(K)]
                                                                    || K <- ?KEYS])])
    end,
    case proplists:get_value(query, Opts, '$missing') of
        '$missing' -> argument_error("missing required :query option in ~0p", [Opts]);
        ignore -> ignore;
        Query -> config(Query, Opts)
    end;
cluster_config(Opts) ->
    argument_error("expected a keyword list of options, got: ~0p", [Opts]).

%%%---------------------------------------------------------------------------
%%% Internal
%%%---------------------------------------------------------------------------

config(Query, Opts) ->
    Queries = queries(Query),
    Types = option(resource_types, Opts, [a, aaaa], fun is_types/1,
                   "expected :resource_types to be a subset of [:a, :aaaa, :srv], got: ~0p"),
    Interval = option(interval, Opts, 5000, fun is_pos_integer/1,
                      "expected :interval to be a positive integer (ms), got: ~0p"),
    _ = option(connect_timeout, Opts, 10000, fun(T) -> T =:= infinity orelse is_pos_integer(T) end,
               "expected :connect_timeout to be a positive integer (ms) or :infinity, got: ~0p"),
    _ = option(log, Opts, false,
               fun(L) -> L =:= false orelse L =:= nil orelse lists:member(L, ?LEVELS) end,
               "expected :log to be false, nil or a Logger level, got: ~0p"),
    Name = option(name, Opts, 'Elixir.DNSCluster',
                  fun(N) -> is_atom(N) andalso N =/= nil andalso N =/= undefined end,
                  "expected :name to be an atom, got: ~0p"),
    Servers = case option(dns_servers, Opts, nil, fun is_servers/1,
                          "expected :dns_servers to be nil or a list of \"IP:PORT\" strings, "
                          "got: ~0p") of
                  nil -> system;
                  List -> List
              end,
    %% SRV records carry their own port and target: one source asks them,
    %% another the A/AAAA records (a port is refused on an SRV source).
    Addr = lists:usort([T || T <- Types, T =/= srv]),
    Sources = lists:append(
                [[{dns, maps:merge(#{query => Q, type => Addr, servers => Servers}, Naming)}
                  || Addr =/= []] ++
                     [{dns, maps:merge(#{query => Q, type => srv, servers => Servers},
                                       maps:without([port], Naming))}
                      || lists:member(srv, Types)]
                 || {Q, Naming} <- Queries]),
    %% dns_cluster connects whether or not this node is listed; caravan
    %% waits to be listed (self_listed) only where it can be: a query of
    %% another app's basename ({"remote", Query}) never lists this node.
    {Name, #{sources => Sources, poll_interval => Interval,
             self_listed => lists:any(fun lists_this_node/1, Queries)}}.

lists_this_node({_, #{basename := Base}}) ->
    case caravan_dns:own_defaults(#{type => srv}) of
        {ok, #{basename := Own}} -> string:equal(Base, Own);
        {error, _} -> false
    end;
lists_this_node({_, #{}}) ->
    true.

%% [{Query, #{basename, port}}]: dns_cluster's query forms.
queries(Query) ->
    List = case Query of
               L when is_list(L) -> L;
               One -> [One]
           end,
    Valid = List =/= [] andalso lists:all(fun is_query/1, List),
    case Valid of
        true -> [query(Q) || Q <- List];
        false -> argument_error("expected :query to be a string, {basename, query}, or list, "
                                "got: ~0p", [Query])
    end.

is_query(Q) when is_binary(Q) -> Q =/= <<>>;
is_query({B, Q}) when is_binary(B), is_binary(Q) -> B =/= <<>> andalso Q =/= <<>>;
is_query(_) -> false.

query({Basename, Q}) ->
    %% dns_cluster's basename is the whole name before '@'; caravan's names
    %% carry the port as the digits after the last '-'.
    case string:split(Basename, <<"-">>, trailing) of
        [Base, Digits] when Base =/= <<>>, Digits =/= <<>> ->
            case string:to_integer(Digits) of
                {Port, <<>>} when Port >= 1, Port =< 65535 ->
                    {Q, #{basename => Base, port => Port}};
                _ -> {Q, #{basename => Basename}}
            end;
        _ -> {Q, #{basename => Basename}}
    end;
query(Q) ->
    {Q, #{}}.

option(Key, Opts, Default, Valid, Format) ->
    Value = proplists:get_value(Key, Opts, Default),
    case Valid(Value) of
        true -> Value;
        false -> argument_error(Format, [Value])
    end.

is_types(Ts) when is_list(Ts), Ts =/= [] ->
    lists:all(fun(T) -> lists:member(T, ?TYPES) end, Ts);
is_types(_) -> false.

is_pos_integer(V) -> is_integer(V) andalso V > 0.

is_servers(nil) -> true;
is_servers(S) -> is_list(S) andalso S =/= [] andalso caravan_dns:valid_servers(S).

-spec argument_error(io:format(), [term()]) -> no_return().
argument_error(Format, Args) ->
    Message = unicode:characters_to_binary(io_lib:format(Format, Args)),
    error(#{'__struct__' => 'Elixir.ArgumentError', '__exception__' => true,
            message => Message}).

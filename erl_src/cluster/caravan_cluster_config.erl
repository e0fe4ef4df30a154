%%% @doc A cluster's config: which keys it may have, whether their values
%%% make a cluster (check/1), and the settings a cluster runs with, its
%%% defaults filled in (settings/1). Pure: no process, no side effects; the
%%% shell (caravan_cluster), its supervisors and libcluster's strategy
%%% read it.
%%%
%%% == Sources ==
%%%
%%% `{dns, Options}' (SRV lookups, polled every `poll_interval' ms);
%%% `{consul, Options}' and `{nomad, Options}' (watched with blocking
%%% queries, see caravan_watch); `{callback, #{basename := B, discover :=
%%% Fun}}': Fun() -> `{ok, [{Host, Port}]} | {error, Reason}', polled like a
%%% DNS source (every `poll_interval' ms, an error keeps the last listing;
%%% junk, or a call not back after 2 x poll_interval (at least 5 s), is an
%%% error);
%%% Host is an IP tuple, an address as text, or a host name (string or
%%% binary). Every source names nodes `Basename-Port@Host' with
%%% caravan_name:node/3: addresses in OTP's text form, host names as given.
%%% `connect', `disconnect' and `list_nodes' may be given as {M, F, A}
%%% (libcluster passes its own); the node is appended to A.
-module(caravan_cluster_config).

-export([known_keys/0]).
-export([check/1]).
-export([settings/1]).
-export([default_grace/1]).

-export_type([config/0, source/0, settings/0]).

-type mfa_args() :: {module(), atom(), [term()]}.
-type callback_source() :: {callback, #{basename := string() | binary(),
                                        discover := fun(() -> {ok, [{term(), inet:port_number()}]}
                                                                 | {error, term()})}}.
-type source() :: {dns, map()} | caravan_watch:source() | callback_source().
-type config() :: #{sources := [source()],
                    poll_interval => pos_integer(),
                    prune => boolean(),
                    self_listed => boolean(),
                    prune_grace => non_neg_integer(),
                    connect => mfa_args(),
                    disconnect => mfa_args(),
                    list_nodes => mfa_args(),
                    retry_min => pos_integer(),
                    retry_max => pos_integer(),
                    max_names => pos_integer(),
                    names_window => pos_integer(),
                    libcluster => boolean()}.
%% A checked config with every default filled in.
-type settings() :: #{sources := [source()],
                      poll_interval := pos_integer(),
                      prune := boolean(),
                      self_listed := boolean(),
                      prune_grace := non_neg_integer(),
                      retry_min := pos_integer(),
                      retry_max := pos_integer(),
                      connect := mfa_args(),
                      disconnect := mfa_args(),
                      list_nodes := mfa_args(),
                      max_names => pos_integer(),
                      names_window => pos_integer(),
                      libcluster := boolean()}.

-define(DEFAULT_POLL_MS, 5000).
-define(RETRY_MIN_MS, 500).
-define(RETRY_MAX_MS, 30000).

%% @doc The keys a cluster's config may have.
-spec known_keys() -> [atom()].
known_keys() ->
    [sources, source, poll_interval, prune, self_listed, prune_grace, connect, disconnect,
     list_nodes, retry_min, retry_max, max_names, names_window, libcluster].

%% @doc ok, or why Config cannot make a cluster: {unknown_key, K} for a key
%% it does not know (a typo would otherwise start a cluster with the
%% default), {bad_config, Why} without sources, {bad_sources, Specs} for
%% malformed ones, {bad_config, Key, Value} for a value of the wrong type.
-spec check(term()) -> ok | {error, term()}.
check(Config) when is_map(Config) ->
    case {maps:keys(Config) -- known_keys(), sources(Config), bad_policy(Config)} of
        {[K | _], _, _} -> {error, {unknown_key, K}};
        {[], {ok, _}, []} -> ok;
        {[], {ok, _}, [{Key, Value} | _]} -> {error, {bad_config, Key, Value}};
        {[], Error, _} -> Error
    end;
check(Config) ->
    {error, {bad_config, Config}}.

%% @doc The settings of a config check/1 accepted, defaults filled in:
%% polled every 5 s, pruning, taking part only while listed, retries from
%% 500 ms to 30 s, the grace of default_grace/1, and the MFAs libcluster
%% defaults to.
-spec settings(config()) -> settings().
settings(Config) ->
    {ok, Specs} = sources(Config),
    Poll = maps:get(poll_interval, Config, ?DEFAULT_POLL_MS),
    Settings = #{sources => Specs,
      poll_interval => Poll,
      prune => maps:get(prune, Config, true),
      self_listed => maps:get(self_listed, Config, true),
      prune_grace => maps:get(prune_grace, Config, default_grace(Poll)),
      retry_min => maps:get(retry_min, Config, ?RETRY_MIN_MS),
      retry_max => maps:get(retry_max, Config, ?RETRY_MAX_MS),
      connect => maps:get(connect, Config, {net_kernel, connect_node, []}),
      disconnect => maps:get(disconnect, Config, {erlang, disconnect_node, []}),
      list_nodes => maps:get(list_nodes, Config, {erlang, nodes, [connected]}),
      libcluster => maps:get(libcluster, Config, false)},
    %% The budget of names (caravan_cluster_names has the defaults).
    maps:merge(Settings, maps:with([max_names, names_window], Config)).

%% @doc The default prune grace: a departing node confirms its absence
%% within one poll interval plus a lookup (a second listing), at most 2 x
%% poll_interval (its timer); 3 x poll_interval + 1 s covers that with margin.
-spec default_grace(pos_integer()) -> pos_integer().
default_grace(Poll) -> 3 * Poll + 1000.

%%%---------------------------------------------------------------------------
%%% Internal
%%%---------------------------------------------------------------------------

-spec bad_policy(map()) -> [{atom(), term()}].
bad_policy(Config) ->
    Checks = [{poll_interval, fun is_pos_integer/1}, {retry_min, fun is_pos_integer/1},
              {retry_max, fun is_pos_integer/1}, {max_names, fun is_pos_integer/1},
              {names_window, fun is_pos_integer/1},
              {prune_grace, fun(V) -> is_integer(V) andalso V >= 0 end},
              {prune, fun is_boolean/1}, {self_listed, fun is_boolean/1},
              {libcluster, fun is_boolean/1},
              {connect, fun is_mfa_args/1}, {disconnect, fun is_mfa_args/1},
              {list_nodes, fun is_mfa_args/1}],
    [{Key, maps:get(Key, Config)} || {Key, Valid} <- Checks, maps:is_key(Key, Config),
                                     not Valid(maps:get(Key, Config))].

-spec is_pos_integer(term()) -> boolean().
is_pos_integer(V) -> is_integer(V) andalso V > 0.

-spec is_mfa_args(term()) -> boolean().
is_mfa_args({M, F, A}) -> is_atom(M) andalso is_atom(F) andalso is_list(A);
is_mfa_args(_) -> false.

-spec sources(map()) -> {ok, [source()]} | {error, term()}.
sources(#{sources := _, source := _}) ->
    {error, {bad_config, "give `sources' or `source', not both"}};
sources(#{sources := Specs}) when not is_list(Specs); Specs =:= [] ->
    {error, {bad_config, sources, Specs}};
sources(#{sources := Specs}) ->
    %% Every option of every source, by the rules discover/1 and watch/2
    %% use (caravan_options): a bad one failed every poll, or crashed it.
    case caravan_options:cluster_sources(Specs) of
        ok -> {ok, Specs};
        {error, _} = Error -> Error
    end;
sources(#{source := Spec} = Config) ->
    sources(maps:remove(source, Config#{sources => [Spec]}));
sources(_) ->
    {error, {bad_config, "a cluster needs `sources' (or `source')"}}.

%%% @doc What the Consul and Nomad sources share: request arguments for the
%%% C program (TLS files, token, timeouts, blocking index and wait) with the
%%% defaults each product's own CLI takes from its environment variables,
%%% and node names built from the instances an answer lists.
-module(caravan_catalog).

%% nodes/2 here builds node names; it is not erlang:nodes/2.
-compile({no_auto_import, [nodes/2]}).

-include_lib("kernel/include/logger.hrl").

-export([call/4]).
-export([connection/2]).
-export([discover/2]).
-export([nodes/2]).
-export([nodes/3]).

-export_type([options/0, member/0, answer/0]).

-type options() :: #{url => string() | binary(),
                     token => string() | binary(),
                     ca_file => file:filename(),
                     cert_file => file:filename(),
                     key_file => file:filename(),
                     timeout => pos_integer(),
                     wait => pos_integer(),
                     max_bytes => pos_integer(),
                     proxy => none | string() | binary(),
                     _ => _}.
-type member() :: #{address := binary(), port := 0..65535, node := binary(), id := binary()}.
-type answer() :: #{index := non_neg_integer(), next_token := binary(), members := [member()]}.

%% The C program's default for the non-blocking part of a request.
-define(DEFAULT_TIMEOUT_MS, 10000).
%% How long a blocking query waits for a change: short enough that a silent
%% network failure is noticed within a minute.
-define(DEFAULT_WAIT_MS, 55000).
%% The servers add up to wait/16 of jitter; the reply needs a moment more.
-define(MARGIN_MS, 2000).
%% timeout_ms and wait_ms: at most 10 minutes in the program (ops_http.c).
-define(MAX_OPTION_MS, 600000).
-define(OWNER, caravan_lookup).

%% @doc Runs Op (consul_health | nomad_services) with Options, the product's
%% environment defaults (Env: [{OptionKey, "VARIABLE"}]) and extra arguments.
%% Index 0 asks at once; a positive Index blocks until it changes or `wait'.
-spec call(Op, Options, Env, {Extra, Index}) -> {ok, answer()} | {error, caravan:error()} when
      Op :: consul_health | nomad_services,
      Options :: options(),
      Env :: #{url := {string(), string()}, atom() => string()},
      Extra :: map(),
      Index :: non_neg_integer().
call(Op, Options, Env, {Extra, Index}) ->
    Timeout = maps:get(timeout, Options, ?DEFAULT_TIMEOUT_MS),
    Wait = maps:get(wait, Options, ?DEFAULT_WAIT_MS),
    case {ms_option(timeout, Timeout, 1), ms_option(wait, Wait, 0)} of
        {ok, ok} -> call(Op, Options, Env, Extra, Index, Timeout, Wait);
        {{error, _} = Error, _} -> Error;
        {_, {error, _} = Error} -> Error
    end.

%% The program's ranges (docs/protocol.md), checked here: the budget below
%% would raise on a non-integer, and name neither option on a huge one.
ms_option(_Key, Ms, Min) when is_integer(Ms), Ms >= Min, Ms =< ?MAX_OPTION_MS ->
    ok;
ms_option(Key, Ms, Min) ->
    {error, {bad_args, iolist_to_binary(io_lib:format("options: ~s must be an integer in ~b..~b "
                                                      "(ms), not ~0P",
                                                      [Key, Min, ?MAX_OPTION_MS, Ms, 10]))}}.

call(Op, Options, Env, Extra, Index, Timeout, Wait) ->
    case args(Options, Env, Extra, Index, Timeout, Wait) of
        {ok, Args} ->
            Budget = Timeout + case Index of 0 -> 0; _ -> Wait + Wait div 16 end + ?MARGIN_MS,
            caravan_port:call(?OWNER, Op, Args, Budget);
        {error, _} = Error ->
            Error
    end.

%% Strings become binaries here, once: a value of the wrong type is an
%% {error, {bad_args, _}} for the caller, not a crash (the C program checks
%% types and ranges too, and answers bad_args itself).
args(Options, Env, Extra, Index, Timeout, Wait) ->
    try
        Common = #{timeout_ms => Timeout,
                   index => Index,
                   wait_ms => Wait},
        Limits = maps:with([max_bytes], Options),
        Strings = maps:map(fun(K, V) ->
                                   case lists:member(K, [service, tag, dc, tagged_address,
                                                         namespace, next_token]) of
                                       true -> bin(V);
                                       false -> V
                                   end
                           end, Extra),
        {ok, maps:merge(maps:merge(connection_args(Options, Env), Common),
                        maps:merge(Limits, Strings))}
    catch
        error:_ -> {error, {bad_args, <<"options: url, service, token, tag, dc, namespace, "
                                        "proxy (or none) and file paths must be strings">>}}
    end.

%% @doc Where and how to reach the product (url, token, TLS files, proxy),
%% as request arguments: Options first, then Env's variables. Used by the
%% agent registration (caravan_register) too.
-spec connection(Options, Env) -> {ok, map()} | {error, {bad_args, binary()}} when
      Options :: options(),
      Env :: #{url := {string(), string()}, atom() => string()}.
connection(Options, Env) ->
    try {ok, connection_args(Options, Env)}
    catch
        error:_ -> {error, {bad_args, <<"options: url, token, proxy (or none) and file paths "
                                        "must be strings">>}}
    end.

%% Strings become binaries here, once: a value of the wrong type raises,
%% and the callers answer {error, {bad_args, _}}, never crash (the C
%% program checks types and ranges too, and answers bad_args itself).
connection_args(Options, Env) ->
    Files = maps:from_list([{K, bin(V)} || K <- [token, ca_file, cert_file, key_file],
                                           {ok, V} <- [setting(K, Options, Env)],
                                           V =/= "", V =/= <<>>]),
    %% Loopback, localhost and unix sockets never use a proxy; other
    %% hosts follow HTTP(S)_PROXY / NO_PROXY unless this says otherwise
    %% (docs/protocol.md).
    Proxy = case maps:find(proxy, Options) of
                {ok, none} -> #{proxy => none};
                {ok, P} -> #{proxy => bin(P)};
                error -> #{}
            end,
    maps:merge(#{url => bin(url(Options, Env))}, maps:merge(Files, Proxy)).

%% @doc One answer of Module (caravan_consul or caravan_nomad) as node names.
-spec discover(module(), #{basename := string() | binary(), _ => _}) ->
          {ok, [node()]} | {error, caravan:error()}.
discover(Module, #{basename := Base} = Options) ->
    case Module:query(Options, 0) of
        {ok, #{members := Members}} -> {ok, nodes(Base, Members)};
        {error, _} = Error -> Error
    end.

%% @doc `Basename-PORT@ADDRESS' for each instance, sorted, no duplicates;
%% one whose name would not fit in an atom is left out with a warning
%% (caravan_name:nodes/2).
-spec nodes(Basename :: string() | binary(), [member()]) -> [node()].
nodes(Basename, Members) ->
    {ok, Nodes} = nodes(Basename, Members, none),
    Nodes.

%% @doc nodes/2 within a cluster's budget of names: a refused answer makes
%% no atom (caravan_name:nodes/3).
-spec nodes(Basename :: string() | binary(), [member()], caravan_cluster_names:guard()) ->
          {ok, [node()]} | {error, {too_many_names, binary()}}.
nodes(Basename, Members, Guard) ->
    caravan_name:nodes(Basename, [{Port, Address} || #{address := Address, port := Port} <- Members,
                                                     Port > 0], Guard).

%%% internal

setting(Key, Options, Env) ->
    case maps:find(Key, Options) of
        {ok, V} -> {ok, V};
        error ->
            case maps:find(Key, Env) of
                {ok, Var} ->
                    case os:getenv(Var) of
                        false -> error;
                        V -> {ok, V}
                    end;
                error -> error
            end
    end.

%% CONSUL_HTTP_ADDR may be "127.0.0.1:8500" (scheme from CONSUL_HTTP_SSL),
%% "https://host:8501" or "unix:///path"; NOMAD_ADDR always has a scheme.
url(Options, #{url := {Var, Default}} = Env) ->
    case maps:find(url, Options) of
        {ok, Url} -> Url;
        error ->
            Raw = case os:getenv(Var) of
                      false -> Default;
                      "" -> Default;
                      V -> V
                  end,
            case string:find(Raw, "://") of
                nomatch ->
                    Ssl = maps:get(ssl_var, Env, undefined),
                    Scheme = case Ssl =/= undefined andalso os:getenv(Ssl) of
                                 "true" -> "https://";
                                 "1" -> "https://";
                                 _ -> "http://"
                             end,
                    Scheme ++ Raw;
                _ -> Raw
            end
    end.

bin(V) -> unicode:characters_to_binary(V).

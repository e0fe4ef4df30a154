%%% @doc The registration config: `{register, [{consul, #{service => ...}}]}'
%%% checked before anything is sent, and turned, with this node's name, into
%%% the arguments of the C program's consul_register (docs/protocol.md).
%%%
%%% What is registered, from the node name `Basename-PORT@HOST':
%%% ID `Service-Node' (unique per node, the same after a restart), Name the
%%% service, Address HOST and Port PORT (so discovery with `basename' reads
%%% back exactly this node's name), Meta `erlang_node' => the node name,
%%% and a TCP check on HOST:PORT unless `check' says otherwise.
%%%
%%% Service names: Consul's DNS interface (Consul docs, "Consul DNS
%%% reference": `<service>.service.<domain>') carries only names that are one
%%% DNS label of letters, digits and dashes; the agent itself warns "will
%%% not be discoverable via DNS due to invalid characters. Valid characters
%%% include all alpha-numerics and dashes", and a label is at most 63 bytes
%%% (RFC 1035, 2.3.4). caravan refuses other names rather than register a
%%% service half of Consul cannot find.
-module(caravan_register_config).

-export([check/1]).
-export([args/2]).
-export([service_id/2]).
-export([text/1]).
-export([text_of/1]).
-export([ttl_ms/1]).

-export_type([registration/0, reason/0]).

-type registration() :: {consul, #{service := string() | binary(), _ => _}}.
-type reason() :: {bad_registration, term()}
                | {unknown_key, atom()}
                | {missing_key, atom()}
                | {bad_config, atom(), term()}.

-define(KEYS, [service, tags, meta, check, recheck, retry_min, retry_max, url, token, ca_file,
               cert_file, key_file, proxy, timeout]).
-define(CHECK_KEYS, [type, interval, timeout, deregister_after, ttl]).
-define(LABEL_MAX, 63).

%%%---------------------------------------------------------------------------
%%% API

%% @doc ok, or the first problem, naming the key.
-spec check(term()) -> ok | {error, reason()}.
check({consul, Map}) when is_map(Map) ->
    Checks = [fun() -> keys(Map, ?KEYS) end,
              fun() -> required(service, Map) end,
              fun() -> service(maps:get(service, Map)) end,
              fun() -> tags(maps:get(tags, Map, [])) end,
              fun() -> meta(maps:get(meta, Map, #{})) end,
              fun() -> check_spec(maps:get(check, Map, #{})) end,
              fun() -> positive(recheck, maps:get(recheck, Map, 1)) end,
              fun() -> positive(timeout, maps:get(timeout, Map, 1)) end,
              fun() -> positive(retry_min, maps:get(retry_min, Map, 1)) end,
              fun() -> positive(retry_max, maps:get(retry_max, Map, 1)) end,
              fun() -> strings([url, token, ca_file, cert_file, key_file], Map) end],
    first(Checks);
check(Other) ->
    {error, {bad_registration, Other}}.

%% @doc The consul_register arguments for Node, Options checked already;
%% connection settings (url, token, TLS, proxy) are the caller's.
-spec args(#{service := string() | binary(), _ => _}, node()) ->
          {ok, map()} | {error, {atom(), binary()}}.
args(#{service := Service} = Options, Node) ->
    {_Name, Host} = caravan_name:split(Node),
    case {Host, caravan_name:port(Node, caravan_config:default_port())} of
        _ when Node =:= nonode@nohost; Host =:= undefined ->
            {error, {no_distribution, <<"this node has no name: start it with -name or -sname "
                                        "to register it">>}};
        {_, {error, _} = Error} ->
            Error;
        {_, {ok, Port}} ->
            Meta = maps:fold(fun(K, V, Acc) -> Acc#{bin(K) => bin(V)} end,
                             #{<<"erlang_node">> => atom_to_binary(Node, utf8)},
                             maps:get(meta, Options, #{})),
            Check = check_args(maps:get(check, Options, #{})),
            {ok, maps:merge(#{id => service_id(Service, Node),
                              name => bin(Service),
                              address => bin(Host),
                              port => Port,
                              tags => [bin(T) || T <- maps:get(tags, Options, [])],
                              meta => Meta}, Check)}
    end.

%% @doc `Service-Node': one per node and service, the same after a restart.
-spec service_id(string() | binary(), node()) -> binary().
service_id(Service, Node) ->
    <<(bin(Service))/binary, "-", (atom_to_binary(Node, utf8))/binary>>.

%% @doc The TTL check's TTL in ms, or undefined when the check is not TTL.
-spec ttl_ms(map()) -> pos_integer() | undefined.
ttl_ms(Options) ->
    case maps:get(check, Options, #{}) of
        #{ttl := Ttl} ->
            {ok, B} = text_of(Ttl),
            {match, Parts} = re:run(B, "([0-9]*\\.?[0-9]*)(ns|us|ms|s|m|h)",
                                    [global, {capture, all_but_first, binary}]),
            Ms = lists:sum([number(N) * unit_ms(U) || [N, U] <- Parts]),
            max(1, round(Ms));
        _ ->
            undefined
    end.

number(N) ->
    try binary_to_integer(N)
    catch error:badarg ->
            binary_to_float(case N of <<".", _/binary>> -> <<"0", N/binary>>;
                                      _ -> case binary:last(N) of
                                               $. -> <<N/binary, "0">>;
                                               _ -> N
                                           end
                            end)
    end.

unit_ms(<<"ns">>) -> 1.0e-6;
unit_ms(<<"us">>) -> 1.0e-3;
unit_ms(<<"ms">>) -> 1;
unit_ms(<<"s">>) -> 1000;
unit_ms(<<"m">>) -> 60000;
unit_ms(<<"h">>) -> 3600000.

%% @doc An error as one line naming the key.
-spec text(reason()) -> binary().
text({bad_registration, Other}) ->
    fmt("register: entries are {consul, #{service => ...}}, not ~0P", [Other, 10]);
text({unknown_key, K}) ->
    fmt("register: unknown key ~p (known: ~p)", [K, ?KEYS]);
text({missing_key, K}) ->
    fmt("register: ~p is required", [K]);
text({bad_config, service, V}) ->
    fmt("register: service ~0P: Consul's DNS interface carries only 1..~b letters, digits and "
        "dashes (one DNS label; Consul docs, \"Consul DNS reference\")", [V, 10, ?LABEL_MAX]);
text({bad_config, tags, V}) ->
    fmt("register: tags must be a list of at most 64 non-empty strings, not ~0P", [V, 10]);
text({bad_config, meta, V}) ->
    fmt("register: meta ~0P: keys are 1..128 letters, digits, '-' and '_', not starting with "
        "consul- or named erlang_node; values strings of at most 512 bytes; at most 63 pairs",
        [V, 10]);
text({bad_config, {check, Key}, V}) ->
    fmt("register: check ~p ~0P: ~s", [Key, V, 10, check_rule(Key)]);
text({bad_config, check, V}) ->
    fmt("register: check must be none or a map of ~p, not ~0P", [?CHECK_KEYS, V, 10]);
text({bad_config, token, _}) ->
    %% IMPORTANT: never the value: it is (or holds) the ACL token.
    <<"register: token must be a string (value not shown)">>;
text({bad_config, K, V}) ->
    fmt("register: ~p ~0P is not valid", [K, V, 10]).

%%%---------------------------------------------------------------------------
%%% internal

first([]) -> ok;
first([F | Rest]) ->
    case F() of
        ok -> first(Rest);
        {error, _} = Error -> Error
    end.

keys(Map, Known) ->
    case [K || K <- maps:keys(Map), not lists:member(K, Known)] of
        [] -> ok;
        [K | _] -> {error, {unknown_key, K}}
    end.

required(Key, Map) ->
    case maps:is_key(Key, Map) of
        true -> ok;
        false -> {error, {missing_key, Key}}
    end.

service(V) ->
    case text_of(V) of
        {ok, S} when byte_size(S) >= 1, byte_size(S) =< ?LABEL_MAX ->
            case [C || <<C>> <= S, not label_char(C)] of
                [] -> ok;
                _ -> {error, {bad_config, service, V}}
            end;
        _ ->
            {error, {bad_config, service, V}}
    end.

label_char(C) ->
    (C >= $a andalso C =< $z) orelse (C >= $A andalso C =< $Z) orelse
        (C >= $0 andalso C =< $9) orelse C =:= $-.

tags(Tags) when is_list(Tags), length(Tags) =< 64 ->
    case lists:all(fun(T) -> case text_of(T) of
                                 {ok, B} -> byte_size(B) >= 1 andalso byte_size(B) =< 255
                                                andalso printable(B);
                                 error -> false
                             end
                   end, Tags) of
        true -> ok;
        false -> {error, {bad_config, tags, Tags}}
    end;
tags(Tags) ->
    {error, {bad_config, tags, Tags}}.

meta(Meta) when is_map(Meta), map_size(Meta) =< 63 ->
    Good = fun(K, V) ->
                   %% Keys may be atoms (#{zone => "a"}), values not.
                   KeyText = case is_atom(K) of
                                 true -> {ok, atom_to_binary(K, utf8)};
                                 false -> text_of(K)
                             end,
                   case {KeyText, text_of(V)} of
                       {{ok, KB}, {ok, VB}} ->
                           meta_key(KB) andalso byte_size(VB) =< 512 andalso printable(VB);
                       _ -> false
                   end
           end,
    case lists:all(fun({K, V}) -> Good(K, V) end, maps:to_list(Meta)) of
        true -> ok;
        false -> {error, {bad_config, meta, Meta}}
    end;
meta(Meta) ->
    {error, {bad_config, meta, Meta}}.

meta_key(K) ->
    byte_size(K) >= 1 andalso byte_size(K) =< 128 andalso K =/= <<"erlang_node">> andalso
        binary:longest_common_prefix([K, <<"consul-">>]) < 7 andalso
        [C || <<C>> <= K, not (label_char(C) orelse C =:= $_)] =:= [].

printable(B) ->
    [C || <<C>> <= B, C < 16#20 orelse C =:= 16#7f] =:= [].

check_spec(none) ->
    ok;
check_spec(Map) when is_map(Map) ->
    case keys(Map, ?CHECK_KEYS) of
        {error, {unknown_key, K}} -> {error, {bad_config, check, #{K => maps:get(K, Map)}}};
        ok -> check_fields(Map)
    end;
check_spec(Other) ->
    {error, {bad_config, check, Other}}.

check_fields(Map) ->
    Type = maps:get(type, Map, case maps:is_key(ttl, Map) of true -> ttl; false -> tcp end),
    Durations = [{K, V} || K <- [interval, timeout, deregister_after, ttl],
                           {ok, V} <- [maps:find(K, Map)]],
    Bad = [{K, V} || {K, V} <- Durations, not duration(V)],
    if
        Type =/= tcp, Type =/= ttl -> {error, {bad_config, {check, type}, Type}};
        Bad =/= [] -> {K, V} = hd(Bad), {error, {bad_config, {check, K}, V}};
        Type =:= ttl, not is_map_key(ttl, Map) -> {error, {bad_config, {check, ttl}, missing}};
        true -> ok
    end.

check_rule(type) -> "must be tcp or ttl";
check_rule(ttl) -> "a TTL check needs ttl, a Go duration (\"15s\")";
check_rule(_) -> "must be a Go duration as Consul reads it: \"10s\", \"1m30s\", \"500ms\"".

%% A Go duration (time.ParseDuration), positive, no sign: the C program
%% checks the same rule (register_duration_ok).
duration(V) ->
    case text_of(V) of
        {ok, B} when B =/= <<>> ->
            re:run(B, "^([0-9]*\\.?[0-9]+(ns|us|ms|s|m|h)|[0-9]+\\.(ns|us|ms|s|m|h))+$",
                   [{capture, none}]) =:= match;
        _ -> false
    end.

check_args(none) ->
    #{check => none};
check_args(Map) ->
    Type = maps:get(type, Map, case maps:is_key(ttl, Map) of true -> ttl; false -> tcp end),
    Names = #{interval => interval, timeout => check_timeout,
              deregister_after => deregister_after, ttl => ttl},
    maps:from_list([{check, Type} |
                    [{maps:get(K, Names), bin(V)} || K <- [interval, timeout, deregister_after, ttl],
                                                      {ok, V} <- [maps:find(K, Map)]]]).

positive(_Key, V) when is_integer(V), V > 0 -> ok;
positive(Key, V) -> {error, {bad_config, Key, V}}.

strings(Keys, Map) ->
    case [K || K <- Keys, {ok, V} <- [maps:find(K, Map)], text_of(V) =:= error] of
        [] -> ok;
        [K | _] -> {error, {bad_config, K, maps:get(K, Map)}}
    end.

%% @doc V as a UTF-8 binary when it is a string (a binary or a charlist of
%% characters; an atom is not), else `error'.
-spec text_of(term()) -> {ok, binary()} | error.
text_of(V) when is_atom(V) -> error;
text_of(V) when is_binary(V); is_list(V) ->
    try unicode:characters_to_binary(V) of
        B when is_binary(B) -> {ok, B};
        _ -> error
    catch
        error:_ -> error
    end;
text_of(_) -> error.

bin(V) when is_atom(V) -> atom_to_binary(V, utf8);
bin(V) -> unicode:characters_to_binary(V).

fmt(Format, Args) ->
    unicode:characters_to_binary(io_lib:format(Format, Args)).

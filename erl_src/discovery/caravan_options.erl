%%% @doc The one check of a discovery source's options, shared by
%%% caravan:discover/1, caravan:lookup_srv/2, caravan:watch/2 and every
%%% cluster source (caravan:start_cluster/2, the application environment,
%%% libcluster): a key the source does not take is refused (a typo, or an
%%% option of another source, would otherwise be ignored without a word),
%%% and so is a value the lookup would fail on, or crash on, later.
%%%
%%% Reasons: `{unknown_key, Key}', `{missing_key, Key}', `{bad_config, Key,
%%% Value}', `{conflict, Key, {OtherKey, OtherValue}}' (two keys Consul
%%% refuses together: `cached' or `max_stale' with `consistency =>
%%% consistent', `max_stale' with `consistency => default'), `{bad_source,
%%% Term}' (not `{dns | consul | nomad | callback, Map}'), `{own_name, basename | port,
%%% Text}' (a DNS source's default that this node's own name cannot give:
%%% caravan_dns:own_defaults/1). discover/1 and lookup_srv/2 answer `{error, {bad_args, Text}}'
%%% (their error type), Text naming the key: see text/2.
-module(caravan_options).

-export([check/2]).
-export([check_source/1]).
-export([check_watch/2]).
-export([cluster_sources/1]).
-export([text/2]).
-export([keys/1]).
-export([max_members/1]).

-export_type([kind/0, reason/0]).

-type kind() :: dns | consul | nomad | callback | lookup.
-type reason() :: {unknown_key, term()} | {missing_key, atom()} | {bad_config, atom(), term()}
                | {conflict, atom(), {atom(), term()}} | {bad_source, term()}
                | {own_name, basename | port, binary()}.

%% The C program's ranges (docs/protocol.md): timeout_ms of a DNS lookup,
%% timeout_ms and wait_ms of an HTTP request, max_bytes, per_page.
-define(DNS_TIMEOUT_MAX_MS, 60000).
-define(HTTP_MS_MAX, 600000).
-define(MAX_BYTES_MAX, 268435456).
-define(PER_PAGE_MAX, 1000000).
%% The members one Consul or Nomad answer may hold, in total across Nomad's
%% pages (caravan_nomad): by default far above any cluster whose nodes all
%% connect to each other (Erlang distribution's full mesh), and a bound on
%% what a server that pages forever makes the caller hold. 2^32 at most.
-define(DEFAULT_MAX_MEMBERS, 10000).
-define(MAX_MEMBERS_MAX, 4294967296).
%% max_stale: a day at most (the C program's range).
-define(MAX_STALE_MAX_MS, 86400000).
%% A DNS name the C program takes: 1..255 bytes (ops_dns.c).
-define(DNS_NAME_MAX, 255).
%% A basename leaves room for "-PORT" in a node name of at most 255 bytes
%% (caravan_name:port/2, DIST_PORT_MAX_NAME).
-define(BASENAME_MAX, 249).
%% A URL's host, as the C program's url_refusal (port_src/http.c) bounds it.
-define(URL_HOST_MAX, 255).
-define(PORT_REFUSAL, "url: the port must be a number in 1..65535").
-define(BASENAME_WHAT, "printable ASCII without '@', 1..249 bytes").

%%%---------------------------------------------------------------------------
%%% API
%%%---------------------------------------------------------------------------

%% @doc ok, or the first thing wrong with Options for a source of Kind
%% (`lookup': the options of lookup_srv/2): an unknown key (in key order),
%% else a required key missing, else a bad value.
-spec check(kind(), term()) -> ok | {error, reason()}.
check(Kind, Options) when is_map(Options) ->
    Rules = rules(Kind),
    Known = [K || {K, _, _, _} <- Rules],
    Unknown = [K || K <- lists:sort(maps:keys(Options)), not lists:member(K, Known)],
    Missing = [K || {K, required, _, _} <- Rules, not maps:is_key(K, Options)],
    Bad = [{K, V} || {K, _, Valid, _} <- Rules, {ok, V} <- [maps:find(K, Options)],
                     not Valid(V)],
    case {Unknown, Missing, Bad} of
        {[K | _], _, _} -> {error, {unknown_key, K}};
        {[], [K | _], _} -> {error, {missing_key, K}};
        {[], [], [{K, V} | _]} -> {error, {bad_config, K, V}};
        {[], [], []} -> conflicts(Kind, Options)
    end;
check(_Kind, Options) ->
    {error, {bad_source, Options}}.

%% @doc check/2 of a `{Kind, Options}' source.
-spec check_source(term()) -> ok | {error, reason()}.
check_source({Kind, Options}) when Kind =:= dns; Kind =:= consul; Kind =:= nomad;
                                   Kind =:= callback ->
    check(Kind, Options);
check_source(Source) ->
    {error, {bad_source, Source}}.

%% @doc What caravan:watch/2 takes: a consul or nomad source and a pid.
-spec check_watch(term(), term()) -> ok | {error, reason()}.
check_watch({Kind, _} = Source, Subscriber) when Kind =:= consul; Kind =:= nomad ->
    case check_source(Source) of
        ok when is_pid(Subscriber) -> ok;
        ok -> {error, {bad_config, subscriber, Subscriber}};
        {error, Reason} -> {error, shown(Reason)}
    end;
check_watch(Source, _Subscriber) ->
    {error, {bad_source, Source}}.

%% @doc A cluster's sources: ok, or the reason caravan_cluster_config:check/1
%% gives. What is not a source (no kind, or a required key missing) is
%% `{bad_sources, [Spec]}' as it always was; an unknown key in a source is
%% `{unknown_key, Key}' as one in the config is; a bad value is
%% `{bad_config, Key, Value}'.
-spec cluster_sources([term()]) -> ok | {error, term()}.
cluster_sources(Specs) ->
    Checked = [{S, check_source(S)} || S <- Specs],
    case [S || {S, {error, {Why, _}}} <- Checked, Why =:= bad_source orelse Why =:= missing_key] of
        [] ->
            case [R || {_, {error, R}} <- Checked] of
                [] -> ok;
                [Reason | _] -> {error, shown(Reason)}
            end;
        Bad ->
            {error, {bad_sources, Bad}}
    end.

%% @doc A reason as the `bad_args' text of discover/1 and lookup_srv/2:
%% `<<"options: timeout must be an integer in 1..60000 (ms), not \"5\"">>'.
-spec text(kind(), reason()) -> binary().
text(Kind, {unknown_key, Key}) ->
    format("options: a ~s source takes no key ~0P (it takes ~s)",
           [kind_name(Kind), Key, 10, lists:join(", ", [atom_to_list(K) || K <- keys(Kind)])]);
text(_Kind, {missing_key, Key}) ->
    format("options: ~s is required", [Key]);
text(_Kind, {bad_config, Key, Value}) when Key =:= url; Key =:= proxy ->
    Why = case Key =:= proxy andalso not is_proxy_scheme(Value) of
              true -> "proxy: must be none or a binary http:// or https:// URL";
              false ->
                  case is_string(Value) andalso url_refusal(Value) of
                      {error, Refusal} when Key =:= proxy -> "proxy " ++ Refusal;
                      {error, Refusal} -> Refusal;
                      _ -> atom_to_list(Key) ++ ": must be a string"
                  end
          end,
    %% The C program's words, without the value: a URL may hold a password.
    format("~s", [Why]);
text(Kind, {bad_config, Key, Value}) ->
    What = case [W || {K, _, _, W} <- rules(Kind), K =:= Key] of
               [W | _] -> W;
               [] -> "valid"
           end,
    format("options: ~s must be ~s, not ~0P", [Key, What, shown(Key, Value), 10]);
text(_Kind, {conflict, Key, {Other, OtherValue}}) ->
    Why = case Key of
              cached -> "Consul refuses ?cached with ?consistent";
              max_stale -> "max_stale bounds stale reads: it needs consistency => stale";
              port -> "port is the port of nodes found by A/AAAA records: SRV records carry "
                          "their own";
              name_by -> "name_by => target names nodes by SRV targets: A/AAAA records have "
                             "none";
              family -> "that family leaves none of the A/AAAA questions to ask"
          end,
    format("options: ~s cannot go with ~s => ~0P (~s)", [Key, Other, OtherValue, 10, Why]);
text(_Kind, {own_name, _Key, Text}) ->
    Text;
text(lookup, {bad_source, Term}) ->
    format("options must be a map, not ~0P", [Term, 10]);
text(_Kind, {bad_source, Term}) ->
    format("options: a source is {dns | consul | nomad, Map} with a map, not ~0P", [Term, 10]).

%% @doc The keys a source of Kind takes.
-spec keys(kind()) -> [atom()].
keys(Kind) ->
    [K || {K, _, _, _} <- rules(Kind)].

%% @doc The `max_members' of DNS, Consul or Nomad options (10000 unless set).
-spec max_members(map()) -> pos_integer().
max_members(Options) ->
    case maps:get(max_members, Options, ?DEFAULT_MAX_MEMBERS) of
        Max when is_integer(Max), Max >= 1 -> Max;
        _ -> ?DEFAULT_MAX_MEMBERS
    end.

%%%---------------------------------------------------------------------------
%%% The rules: {Key, required | optional, Valid, What a valid value is}
%%%---------------------------------------------------------------------------

rules(lookup) ->
    [{servers, optional, fun caravan_dns:valid_servers/1,
      "system or a list of at most 8 \"IP\", \"IP:PORT\" or \"[IPv6]:PORT\" strings"},
     {resolv_conf, optional, fun is_string/1, "a file name"},
     {timeout, optional, range(1, ?DNS_TIMEOUT_MAX_MS), "an integer in 1..60000 (ms)"},
     {tries, optional, range(1, 10), "an integer in 1..10"},
     {transport, optional, one_of([tcp, udp]), "tcp or udp"},
     {family, optional, one_of([inet, inet6, any]), "inet, inet6 or any"},
     {max_members, optional, range(1, ?MAX_MEMBERS_MAX), "an integer in 1..4294967296"}];
rules(dns) ->
    [{query, required, fun is_dns_name/1, "a printable string of 1..255 bytes"},
     %% Unset: this node's own (caravan_dns:own_defaults/1, checked in conflicts/2).
     {basename, optional, fun is_basename/1, ?BASENAME_WHAT},
     {type, optional, fun is_dns_types/1,
      "a, aaaa or srv, or a non-empty list of them without repeats"},
     {port, optional, range(1, 65535), "an integer in 1..65535"},
     {name_by, optional, one_of([address, target]), "address or target"}
     | rules(lookup)];
rules(consul) ->
    [{service, required, fun is_text/1, "a non-empty string"},
     {basename, required, fun is_basename/1, ?BASENAME_WHAT},
     {passing, optional, fun is_boolean/1, "true or false"},
     {tag, optional, fun is_string/1, "a string"},
     {dc, optional, fun is_string/1, "a string"},
     {tagged_address, optional, fun is_string/1, "a string"},
     {consistency, optional, one_of([default, stale, consistent]),
      "default, stale or consistent"},
     {cached, optional, fun is_boolean/1, "true or false"},
     {max_stale, optional, range(1, ?MAX_STALE_MAX_MS), "an integer in 1..86400000 (ms)"}
     | http_rules()];
rules(nomad) ->
    [{service, required, fun is_text/1, "a non-empty string"},
     {basename, required, fun is_basename/1, ?BASENAME_WHAT},
     {namespace, optional, fun is_string/1, "a string"},
     {per_page, optional, range(1, ?PER_PAGE_MAX), "an integer in 1..1000000"}
     | http_rules()];
rules(callback) ->
    [{basename, required, fun is_basename/1, ?BASENAME_WHAT},
     {discover, required, fun(F) -> is_function(F, 0) end, "a fun of arity 0"},
     {max_members, optional, range(1, ?MAX_MEMBERS_MAX), "an integer in 1..4294967296"}].

http_rules() ->
    [{url, optional, fun(U) -> is_string(U) andalso url_refusal(U) =:= ok end,
      "an http://, https:// or unix:// URL the program takes"},
     {token, optional, fun is_one_line/1, "a string on one line"},
     {ca_file, optional, fun is_string/1, "a file name"},
     {cert_file, optional, fun is_string/1, "a file name"},
     {key_file, optional, fun is_string/1, "a file name"},
     {timeout, optional, range(1, ?HTTP_MS_MAX), "an integer in 1..600000 (ms)"},
     {wait, optional, range(0, ?HTTP_MS_MAX), "an integer in 0..600000 (ms)"},
     {max_bytes, optional, range(1, ?MAX_BYTES_MAX), "an integer in 1..268435456"},
     {max_members, optional, range(1, ?MAX_MEMBERS_MAX), "an integer in 1..4294967296"},
     {proxy, optional, fun(P) -> P =:= none orelse is_proxy(P) end,
      "none or an http:// or https:// URL string (\"http://host:port\")"}].

%% What Consul answers 400 to (agent/http.go's parseConsistency; the
%% "Consistency Modes" and "Agent Caching" docs: "Combining ?cached with
%% ?consistent is an error"), refused at start with the key named; and
%% max_stale where it bounds nothing (caravan_consul:consistency/1 has the
%% defaults these are judged with).
conflicts(consul, Options) ->
    {Consistency, _Cached} = caravan_consul:consistency(Options),
    case {Consistency, maps:find(cached, Options), maps:is_key(max_stale, Options)} of
        {consistent, {ok, true}, _} -> {error, {conflict, cached, {consistency, consistent}}};
        {stale, _, _} -> ok;
        {Other, _, true} -> {error, {conflict, max_stale, {consistency, Other}}};
        _ -> ok
    end;
%% DNS: `port' and `name_by => target' where no record type uses them, a
%% `family' that leaves none of the A/AAAA types, and a default that this
%% node's own name cannot give (caravan_dns:own_defaults/1): refused at
%% start, not at every poll.
conflicts(dns, Options) ->
    Types = caravan_dns:types(Options),
    Addr = [T || T <- Types, T =/= srv],
    Family = maps:get(family, Options, any),
    Left = [T || T <- Addr, Family =:= any orelse (T =:= a andalso Family =:= inet)
                                orelse (T =:= aaaa andalso Family =:= inet6)],
    Type = maps:get(type, Options, srv),
    case {Addr, maps:is_key(port, Options), maps:get(name_by, Options, address), Left} of
        {[], true, _, _} -> {error, {conflict, port, {type, Type}}};
        {[_ | _], _, target, _} -> {error, {conflict, name_by, {type, Type}}};
        {[_ | _], _, _, []} -> {error, {conflict, family, {type, Type}}};
        _ ->
            case caravan_dns:own_defaults(Options) of
                {ok, _} -> ok;
                {error, _} = Error -> Error
            end
    end;
conflicts(_Kind, _Options) ->
    ok.

range(Min, Max) ->
    fun(V) -> is_integer(V) andalso V >= Min andalso V =< Max end.

one_of(Values) ->
    fun(V) -> lists:member(V, Values) end.

%% Text the C program can take: a binary or a charlist that is valid UTF-8
%% and holds no NUL byte (term.c refuses one in any string argument: it
%% would cut the C string short).
is_string(V) when is_binary(V); is_list(V) ->
    try unicode:characters_to_binary(V) of
        Bin when is_binary(Bin) -> binary:match(Bin, <<0>>) =:= nomatch;
        _ -> false
    catch error:_ -> false
    end;
is_string(_) ->
    false.

%% A header value (the token): a string on one line (ops_http.c refuses CR
%% and LF, which would end the header).
is_one_line(V) ->
    is_string(V) andalso
        binary:match(unicode:characters_to_binary(V), [<<"\r">>, <<"\n">>]) =:= nomatch.

%% A name: non-empty, printable (a binary as a charlist).
is_text(V) when is_binary(V) ->
    V =/= <<>> andalso
        case unicode:characters_to_list(V) of
            L when is_list(L) -> io_lib:printable_unicode_list(L);
            _ -> false
        end;
is_text(V) when is_list(V) -> V =/= [] andalso io_lib:printable_unicode_list(V);
is_text(_) -> false.

%% A DNS name as the C program takes it (ops_dns.c): 1..255 bytes, no NUL
%% (is_text/1 refuses every control character).
%% No empty label either ("a..b", ".a": c-ares' "misformatted domain
%% name"); one trailing dot is the root's.
is_dns_name(V) ->
    is_text(V) andalso
        begin
            Bin = unicode:characters_to_binary(V),
            byte_size(Bin) =< ?DNS_NAME_MAX andalso
                binary:match(Bin, <<"..">>) =:= nomatch andalso
                (binary:first(Bin) =/= $. orelse Bin =:= <<".">>)
        end.

%% A basename, binary or charlist alike: printable ASCII without '@' (the
%% node name rule of caravan_name:port/2; '@' would split the node name),
%% at most 249 bytes so that "-PORT" still fits in 255.
is_basename(V) when is_binary(V); is_list(V) ->
    try unicode:characters_to_binary(V) of
        Bin when is_binary(Bin), Bin =/= <<>>, byte_size(Bin) =< ?BASENAME_MAX ->
            [C || <<C>> <= Bin, C < 16#21 orelse C > 16#7e orelse C =:= $@] =:= [];
        _ -> false
    catch error:_ -> false
    end;
is_basename(_) ->
    false.

is_dns_types(T) when T =:= a; T =:= aaaa; T =:= srv -> true;
is_dns_types([_ | _] = Ts) ->
    lists:all(fun(T) -> lists:member(T, [a, aaaa, srv]) end, Ts) andalso
        length(lists:usort(Ts)) =:= length(Ts);
is_dns_types(_) -> false.

%% A proxy the C program takes (ops_http.c, then url_refusal): an http:// or
%% https:// URL.
is_proxy(P) ->
    is_proxy_scheme(P) andalso url_refusal(P) =:= ok.

is_proxy_scheme(P) ->
    is_string(P) andalso
        case unicode:characters_to_binary(P) of
            <<"http://", _/binary>> -> true;
            <<"https://", _/binary>> -> true;
            _ -> false
        end.

%% ok, or why the C program's url_refusal (port_src/http.c) refuses a URL,
%% in its words: the scheme is case-sensitive, the user info holds no raw
%% '@', a host is there and at most 255 bytes, an IPv6 literal is closed,
%% and what follows the host is :PORT (1..65535, or empty) or a path.
-spec url_refusal(string() | binary()) -> ok | {error, string()}.
url_refusal(Url) ->
    case unicode:characters_to_binary(Url) of
        <<"unix://", _/binary>> -> ok;
        <<"http://", Rest/binary>> -> authority_refusal(Rest);
        <<"https://", Rest/binary>> -> authority_refusal(Rest);
        _ -> {error, "url: must start with http://, https:// or unix://"}
    end.

authority_refusal(Rest) ->
    [Authority | _] = binary:split(Rest, [<<"/">>, <<"?">>, <<"#">>]),
    case binary:split(Authority, <<"@">>, [global]) of
        [_, _, _ | _] -> {error, "url: its user info holds an '@'; write it as %40"};
        [_UserInfo, HostPort] -> host_refusal(HostPort);
        [HostPort] -> host_refusal(HostPort)
    end.

host_refusal(<<"[", Bracketed/binary>>) ->
    case binary:split(Bracketed, <<"]">>) of
        [V6, After] ->
            case v6_refusal(V6) of
                ok -> after_host_refusal(After);
                Error -> Error
            end;
        [_] -> {error, "url: an IPv6 address without its closing ']'"}
    end;
host_refusal(HostPort) ->
    [Host | _] = binary:split(HostPort, <<":">>),
    Dots = binary:match(Host, <<"..">>) =/= nomatch,
    if
        Host =:= <<>> -> {error, "url: no host after the scheme"};
        byte_size(Host) > ?URL_HOST_MAX -> {error, "url: host name longer than 255 bytes"};
        %% As port_src/http_proxy.c: libcurl decodes a host before it uses
        %% it, so the host judged (loopback? NO_PROXY?) must be the one
        %% written; and an empty label is judged by some other resolver.
        Host =/= <<>> -> host_text_refusal(Host, Dots, HostPort)
    end.

host_text_refusal(Host, Dots, HostPort) ->
    case {binary:match(Host, <<"%">>), binary:first(Host), Dots} of
        {{_, _}, _, _} -> {error, "url: a percent-encoded host; write the host itself"};
        {nomatch, $., _} -> {error, "url: a host that starts with '.'"};
        {nomatch, _, true} -> {error, "url: a host with an empty label ('..')"};
        {nomatch, _, false} -> after_host_refusal(binary:part(HostPort, byte_size(Host),
                                                             byte_size(HostPort) - byte_size(Host)))
    end.

%% An IPv6 literal's one '%' is its zone id (as http_proxy.c takes it):
%% after a real address, "25" then letters, digits or '-._~'.
v6_refusal(V6) ->
    case binary:split(V6, <<"%">>) of
        [_] ->
            ok;
        [Addr, Zone0] ->
            Zone = case Zone0 of
                       <<"25", Z/binary>> when byte_size(Z) > 0 -> Z;
                       _ -> Zone0
                   end,
            case inet:parse_ipv6strict_address(binary_to_list(Addr)) of
                {error, _} -> {error, "url: an IPv6 address that is not a literal"};
                {ok, _} when Zone =:= <<>> -> {error, "url: an empty IPv6 zone id"};
                {ok, _} ->
                    Bad = [C || <<C>> <= Zone, not (is_alnum(C) orelse lists:member(C, "-._~"))],
                    case Bad of
                        [] -> ok;
                        _ -> {error, "url: an IPv6 zone id with other than letters, digits, '-._~'"}
                    end
            end
    end.

is_alnum(C) -> (C >= $0 andalso C =< $9) orelse (C >= $a andalso C =< $z) orelse
                   (C >= $A andalso C =< $Z).

after_host_refusal(<<>>) ->
    ok;
after_host_refusal(<<":", Digits/binary>>) ->
    IsDigits = [C || <<C>> <= Digits, C < $0 orelse C > $9] =:= [],
    if
        not IsDigits; byte_size(Digits) > 5 -> {error, ?PORT_REFUSAL};
        Digits =:= <<>> -> ok;
        true ->
            case binary_to_integer(Digits) of
                Port when Port >= 1, Port =< 65535 -> ok;
                _ -> {error, ?PORT_REFUSAL}
            end
    end;
after_host_refusal(_) ->
    {error, "url: the host must be followed by :PORT or a path"}.

%% A reason as it leaves caravan (watch/2, start_cluster/2 answers, logs):
%% check/2's own reasons keep the value, for text/2 to say what is wrong.
shown({bad_config, Key, Value}) -> {bad_config, Key, shown(Key, Value)};
shown(Reason) -> Reason.

%% A token is never repeated, not even a malformed one (README, Security):
%% it may be a real one with a stray newline.
shown(token, V) when is_binary(V); is_list(V) -> <<"(token masked)">>;
%% Nor the user info of a URL (a password): "http://***@host:8500".
shown(Key, V) when Key =:= url orelse Key =:= proxy, is_binary(V) orelse is_list(V) ->
    try unicode:characters_to_binary(V) of
        Bin when is_binary(Bin) ->
            case without_user_info(Bin) of
                Bin -> V; % no user info: as given
                Masked -> Masked
            end;
        _ -> <<"(url not shown)">>
    catch error:_ -> <<"(url not shown)">>
    end;
shown(_Key, V) -> V.

without_user_info(Url) ->
    case binary:split(Url, <<"://">>) of
        [Scheme, Rest] ->
            [Authority | _] = binary:split(Rest, [<<"/">>, <<"?">>, <<"#">>]),
            case string:split(Authority, <<"@">>, trailing) of
                [_UserInfo, HostPort] ->
                    Tail = binary:part(Rest, byte_size(Authority),
                                       byte_size(Rest) - byte_size(Authority)),
                    <<Scheme/binary, "://***@", HostPort/binary, Tail/binary>>;
                [_] ->
                    Url
            end;
        [_] ->
            Url
    end.

kind_name(lookup) -> "DNS lookup";
kind_name(Kind) -> atom_to_list(Kind).

format(Format, Args) ->
    unicode:characters_to_binary(io_lib:format(Format, Args)).

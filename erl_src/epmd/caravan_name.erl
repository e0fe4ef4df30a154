%%% @doc Node names: splitting, and the name -> port rule in Erlang.
%%%
%%% The rule's home is the C program (port_src/dist_port.c), which answers
%%% every lookup. This copy exists only so that distribution keeps working
%%% while that program cannot answer (missing from a release, or restarting
%%% after a kill): caravan_epmd runs under kernel, where a failed lookup
%%% would mean a failed listen or connect. test/caravan_name_tests.erl checks
%%% the two agree on the same table of names.
-module(caravan_name).

-include_lib("kernel/include/logger.hrl").

-export([split/1]).
-export([port/2]).
-export([node/3]).
-export([fits/3]).
-export([text/3]).
-export([nodes/2]).
-export([nodes/3]).
-export([address/1]).

%% Same limit as DIST_PORT_MAX_NAME in port_src/dist_port.h.
-define(MAX_NAME, 255).
%% What an atom, and so a whole node name (name@host), can hold.
-define(MAX_ATOM_CHARS, 255).
-define(PORT_MAX, 65535).

%% @doc Splits `name@host' (atom, string or binary) into its parts.
-spec split(Node) -> {Name :: string(), Host :: string() | undefined} when
      Node :: atom() | string() | binary().
split(Node) when is_atom(Node) -> split(atom_to_list(Node));
split(Node) when is_binary(Node) -> split(binary_to_list(Node));
split(Node) when is_list(Node) ->
    case string:split(Node, "@") of
        [Name, Host] -> {Name, Host};
        [Name] -> {Name, undefined}
    end.

%% @doc `Basename-Port@Host': the name a node discovered at Host:Port runs
%% under. IP addresses (tuples or text) in the text form OTP uses for long
%% names (`fd00::1'); host names as given. Raises `{not_a_host, Host}' for
%% text that address/1 calls `ambiguous' (`"010.0.0.1"' is no node's host:
%% read as an address it is 8.0.0.1, and OTP's resolver reads it so), and
%% for a host name that names no node (is_host_name/1: `""' would give
%% `app-4370@', `"a@b"' a name that splits elsewhere, `"a b"' one no
%% resolver takes).
-spec node(Basename, Port, Host) -> node() when
      Basename :: string() | binary(),
      Port :: inet:port_number(),
      Host :: inet:ip_address() | string() | binary().
node(Base, Port, Host) ->
    list_to_atom(lists:flatten([unicode:characters_to_list(Base), $-, integer_to_list(Port), $@,
                                host(Host)])).

%% @doc Whether node/3's name for these fits in an atom (255 characters):
%% an address or host name near 255 bytes, with a basename, does not, and
%% node/3 would raise system_limit.
-spec fits(Basename, Port, Host) -> boolean() when
      Basename :: string() | binary(),
      Port :: inet:port_number(),
      Host :: inet:ip_address() | string() | binary().
fits(Base, Port, Host) ->
    length(unicode:characters_to_list(Base)) + length(integer_to_list(Port)) +
        length(host(Host)) + 2 =< ?MAX_ATOM_CHARS.

%% @doc `Basename-Port@Host' for each pair, sorted, no duplicates; a pair
%% whose name would not fit in an atom (fits/3) is left out with a warning,
%% the others kept: node/3 would raise system_limit for it, and one such
%% entry in an answer used to fail the whole answer.
-spec nodes(Basename, [{Port, Host}]) -> [node()] when
      Basename :: string() | binary(),
      Port :: inet:port_number(),
      Host :: inet:ip_address() | string() | binary().
%%
%% A pair whose host is an ambiguous address (address/1) is left out too,
%% with a warning that counts them: no node runs under such a name, and
%% dialling it would reach another host.
nodes(Base, Pairs) ->
    {ok, Nodes} = nodes(Base, Pairs, none),
    Nodes.

%% @doc nodes/2 within a cluster's budget of names
%% (caravan_cluster_names): the names are judged as text, and only an
%% admitted answer becomes atoms. A refused one makes none.
-spec nodes(Basename, [{Port, Host}], caravan_cluster_names:guard()) ->
          {ok, [node()]} | {error, {too_many_names, binary()}} when
      Basename :: string() | binary(),
      Port :: inet:port_number(),
      Host :: inet:ip_address() | string() | binary().
nodes(Base, Pairs, Guard) ->
    Names = lists:usort([text(Base, Port, Host) || {Port, Host} <- usable(Base, Pairs)]),
    case caravan_cluster_names:admit(Guard, Names) of
        ok -> {ok, [binary_to_atom(N, utf8) || N <- Names]};
        {error, _} = Error -> Error
    end.

%% @doc `Basename-Port@Host' as text, made as node/3 makes its atom (and
%% raising as it does): what a name budget judges before the atom exists.
-spec text(Basename, Port, Host) -> binary() when
      Basename :: string() | binary(),
      Port :: inet:port_number(),
      Host :: inet:ip_address() | string() | binary().
text(Base, Port, Host) ->
    unicode:characters_to_binary([unicode:characters_to_list(Base), $-, integer_to_list(Port),
                                  $@, host(Host)]).

usable(Base, Pairs) ->
    {Named, Unnamed} = lists:partition(fun({_Port, Host}) -> names_a_host(Host) end, Pairs),
    _ = [?LOG_WARNING("caravan: ~b instance(s) of ~ts left out: a host that names no node "
                      "(~0p: empty, or not printable ASCII, or with an '@')",
                      [length(Unnamed), Base, element(2, hd(Unnamed))]) || Unnamed =/= []],
    {Hosts, Ambiguous} = lists:partition(fun({_Port, Host}) -> address(Host) =/= ambiguous end,
                                         Named),
    _ = [?LOG_WARNING("caravan: ~b instance(s) of ~ts left out: an address that is not in "
                      "strict form (~ts; zero-padded, octal, hexadecimal, a bare number, a "
                      "shortened IPv4 or a zone) would be read as another host",
                      [length(Ambiguous), Base, element(2, hd(Ambiguous))]) || Ambiguous =/= []],
    {Fit, Long} = lists:partition(fun({Port, Host}) -> fits(Base, Port, Host) end, Hosts),
    _ = [?LOG_WARNING("caravan: ~b instance(s) of ~ts left out: their node name would be over "
                      "~b characters", [length(Long), Base, ?MAX_ATOM_CHARS]) || Long =/= []],
    Fit.

%% @doc How a host is read: `{ok, Ip}' for an IP tuple, or text in the
%% strict form inet:parse_strict_address/1 reads (dotted decimal, four
%% parts, no leading zeros; RFC 4291 IPv6) and the C program's inet_pton
%% agrees with; `ambiguous' for other text that OTP's lenient parser (and
%% so its resolver, inet:getaddr/2) or C's inet_aton would take for an
%% address: `"127.000.000.010"' (octal: 127.0.0.8), `"2130706442"'
%% (127.0.0.10), `"0x7f.1"', `"127.1"', and an IPv6 zone (`"fe80::1%eth0"',
%% which inet_pton refuses); `host_name' for anything else.
-spec address(inet:ip_address() | string() | binary()) ->
          {ok, inet:ip_address()} | ambiguous | host_name.
address(Ip) when is_tuple(Ip) ->
    {ok, Ip};
address(Host) ->
    case unicode:characters_to_list(Host) of
        Text when is_list(Text) -> text_address(Text);
        _ -> host_name % not text: node/3 raises on it as on any such host
    end.

text_address(Text) ->
    case {inet:parse_strict_address(Text), lists:member($%, Text)} of
        {{ok, Ip}, false} -> {ok, Ip};
        {{ok, _}, true} -> ambiguous;
        {{error, einval}, _} ->
            case inet:parse_address(Text) of
                {ok, _} -> ambiguous;
                {error, einval} -> host_name
            end
    end.

names_a_host(Host) ->
    is_tuple(Host) orelse address(Host) =/= host_name orelse is_host_name(Host).

host(Ip) when is_tuple(Ip) ->
    inet:ntoa(Ip);
host(Host) ->
    case address(Host) of
        {ok, Ip} -> inet:ntoa(Ip);
        host_name ->
            case is_host_name(Host) of
                true -> unicode:characters_to_list(Host);
                false -> error({not_a_host, Host})
            end;
        ambiguous -> error({not_a_host, Host})
    end.

%% A host name a node name can end in: 1..255 bytes of printable ASCII
%% without '@' (no space, no control character, no NUL).
is_host_name(Host) ->
    case unicode:characters_to_binary(Host) of
        Bin when is_binary(Bin), Bin =/= <<>>, byte_size(Bin) =< ?MAX_NAME ->
            [C || <<C>> <= Bin, C < 16#21 orelse C > 16#7e orelse C =:= $@] =:= [];
        _ ->
            false
    end.

%% @doc The port a node name carries; errors as the C program names them.
-spec port(Name, Default) -> {ok, 1..65535} | {error, {Reason, binary()}} when
      Name :: atom() | string() | binary(),
      Default :: 0..65535,
      Reason :: empty_name | name_too_long | invalid_name | port_out_of_range | no_port.
port(Node, Default) ->
    {Name, _Host} = split(Node),
    Bytes = unicode:characters_to_binary(Name, utf8),
    if
        Bytes =:= <<>> ->
            error_reply(empty_name, "node name is empty: the name part before '@' is required");
        byte_size(Bytes) > ?MAX_NAME ->
            error_reply(name_too_long, io_lib:format("node name is ~b bytes: at most ~b are allowed",
                                                     [byte_size(Bytes), ?MAX_NAME]));
        true ->
            case [C || <<C>> <= Bytes, C < 16#21 orelse C > 16#7e] of
                [] -> digits_port(Name, Default);
                [_ | _] -> error_reply(invalid_name, "node name has a byte that is not "
                                       "printable ASCII: only printable ASCII is allowed")
            end
    end.

digits_port(Name, Default) ->
    Digits = lists:reverse(lists:takewhile(fun(C) -> C >= $0 andalso C =< $9 end,
                                           lists:reverse(Name))),
    case Digits of
        [] when Default >= 1, Default =< ?PORT_MAX ->
            {ok, Default};
        [] ->
            error_reply(no_port, io_lib:format("node ~ts has no port: its name does not end in "
                                               "digits and no default port is set", [Name]));
        _ ->
            case list_to_integer(Digits) of
                Port when Port >= 1, Port =< ?PORT_MAX -> {ok, Port};
                _ -> error_reply(port_out_of_range,
                                 io_lib:format("node ~ts: the digits ending a node name are its "
                                               "port and must be 1..65535", [Name]))
            end
    end.

error_reply(Reason, Text) ->
    {error, {Reason, unicode:characters_to_binary(Text)}}.

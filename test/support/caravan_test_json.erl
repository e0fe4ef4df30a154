%%% A small JSON encoder for the test servers (OTP 25 has no json module):
%%% maps, lists, binaries and strings-as-binaries, integers, true/false/null.
%%% And a strict decoder (RFC 8259; numbers as integers or floats) for the
%%% bodies the Consul agent test server receives: {ok, Term} or
%%% {error, Why}, never a crash.
-module(caravan_test_json).

-export([encode/1]).
-export([decode/1]).

-spec decode(binary()) -> {ok, term()} | {error, term()}.
decode(Bin) ->
    try value(ws(Bin)) of
        {V, Rest} ->
            case ws(Rest) of
                <<>> -> {ok, V};
                _ -> {error, trailing}
            end
    catch
        throw:Why -> {error, Why};
        error:Why -> {error, Why}
    end.

ws(<<C, R/binary>>) when C =:= $\s; C =:= $\t; C =:= $\n; C =:= $\r -> ws(R);
ws(B) -> B.

value(<<${, R/binary>>) -> object(ws(R), #{});
value(<<$[, R/binary>>) -> array(ws(R), []);
value(<<$", R/binary>>) -> string(R, []);
value(<<"true", R/binary>>) -> {true, R};
value(<<"false", R/binary>>) -> {false, R};
value(<<"null", R/binary>>) -> {null, R};
value(B) ->
    case re:run(B, "^-?(0|[1-9][0-9]*)(\\.[0-9]+)?([eE][-+]?[0-9]+)?", [{capture, first, binary}]) of
        {match, [N]} ->
            <<_:(byte_size(N))/binary, R/binary>> = B,
            V = try binary_to_integer(N) catch error:badarg -> binary_to_float(N) end,
            {V, R};
        nomatch -> throw(bad_value)
    end.

object(<<$}, R/binary>>, Acc) when map_size(Acc) =:= 0 -> {Acc, R};
object(<<$", R/binary>>, Acc) ->
    {K, R1} = string(R, []),
    <<$:, R2/binary>> = ws(R1),
    {V, R3} = value(ws(R2)),
    case ws(R3) of
        <<$,, R4/binary>> -> object(ws(R4), Acc#{K => V});
        <<$}, R4/binary>> -> {Acc#{K => V}, R4};
        _ -> throw(bad_object)
    end;
object(_, _) -> throw(bad_object).

array(<<$], R/binary>>, []) -> {[], R};
array(B, Acc) ->
    {V, R} = value(B),
    case ws(R) of
        <<$,, R1/binary>> -> array(ws(R1), [V | Acc]);
        <<$], R1/binary>> -> {lists:reverse([V | Acc]), R1};
        _ -> throw(bad_array)
    end.

string(<<$", R/binary>>, Acc) -> {unicode:characters_to_binary(lists:reverse(Acc)), R};
string(<<$\\, $u, H:4/binary, R/binary>>, Acc) -> string(R, [binary_to_integer(H, 16) | Acc]);
string(<<$\\, C, R/binary>>, Acc) ->
    E = case C of
            $" -> $"; $\\ -> $\\; $/ -> $/; $b -> $\b; $f -> $\f; $n -> $\n; $r -> $\r;
            $t -> $\t; _ -> throw(bad_escape)
        end,
    string(R, [E | Acc]);
string(<<C, _/binary>>, _) when C < 16#20 -> throw(control_character);
string(<<C/utf8, R/binary>>, Acc) -> string(R, [C | Acc]);
string(_, _) -> throw(bad_string).

-spec encode(term()) -> iodata().
encode(null) -> <<"null">>;
encode(true) -> <<"true">>;
encode(false) -> <<"false">>;
encode(N) when is_integer(N) -> integer_to_binary(N);
encode(B) when is_binary(B) -> [$", escape(B), $"];
encode(A) when is_atom(A) -> encode(atom_to_binary(A));
encode(L) when is_list(L) -> [$[, join([encode(E) || E <- L]), $]];
encode(M) when is_map(M) ->
    [${, join([[encode(to_bin(K)), $:, encode(V)] || {K, V} <- lists:sort(maps:to_list(M))]), $}].

to_bin(K) when is_atom(K) -> atom_to_binary(K);
to_bin(K) when is_binary(K) -> K.

join([]) -> [];
join([H | T]) -> [H | [[$, | E] || E <- T]].

%% Most strings need no escaping; only those that do are walked byte by byte
%% (the test servers answer with thousands of entries in the benchmarks).
escape(B) ->
    case binary:match(B, special()) of
        nomatch -> B;
        _ -> escape_bytes(B)
    end.

%% The bytes JSON strings must escape, as a compiled pattern made once:
%% compiling it per string cost more than the rest of the encoding.
special() ->
    case persistent_term:get({?MODULE, special}, undefined) of
        undefined ->
            P = binary:compile_pattern([<<C>> || C <- [$", $\\ | lists:seq(0, 16#1f)]]),
            persistent_term:put({?MODULE, special}, P),
            P;
        P ->
            P
    end.

escape_bytes(B) ->
    [case C of
         $" -> <<"\\\"">>;
         $\\ -> <<"\\\\">>;
         $\n -> <<"\\n">>;
         _ when C < 16#20 -> io_lib:format("\\u~4.16.0b", [C]);
         _ -> <<C>>
     end || <<C>> <= B].

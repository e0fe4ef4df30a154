%%% A small JSON encoder for the test servers (OTP 25 has no json module):
%%% maps, lists, binaries and strings-as-binaries, integers, true/false/null.
-module(caravan_test_json).

-export([encode/1]).

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

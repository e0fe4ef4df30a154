%%% For tests that speak to the C program over a port of their own
%%% ({packet, 4}): the next whole reply, a big one joined from its chunks
%%% (docs/protocol.md, "Chunked replies") as caravan_port does, so that such
%%% a test still sees one message per reply. Chunks begun are kept in the
%%% calling process's dictionary under {?MODULE, Port, Id}.
-module(caravan_test_port_reader).

-export([next/2]).
-export([chunks_seen/1]).

%% @doc The next whole reply from Port as the bytes of its term (what a
%% {packet, 4} port delivered before replies came in chunks), or timeout.
%% Checks the chunks' order and sizes, as the owner does.
-spec next(port(), timeout()) -> {ok, binary()} | timeout.
next(Port, Timeout) ->
    receive
        {Port, {data, D}} ->
            case binary_to_term(D) of
                {Id, chunk, {Seq, Size, Bytes}} -> chunk(Port, Id, Seq, Size, Bytes, Timeout);
                _ -> {ok, D}
            end
    after Timeout -> timeout
    end.

%% @doc How many chunk packets next/2 has read from Port.
-spec chunks_seen(port()) -> non_neg_integer().
chunks_seen(Port) ->
    case get({?MODULE, Port, count}) of
        undefined -> 0;
        N -> N
    end.

chunk(Port, Id, Seq, Size, Bytes, Timeout) ->
    put({?MODULE, Port, count}, chunks_seen(Port) + 1),
    Key = {?MODULE, Port, Id},
    {Seq, Size, Parts} = case get(Key) of
                             undefined -> {0, Size, []};
                             {Next, Size0, Parts0} -> {Next, Size0, Parts0}
                         end,
    Parts1 = [Bytes | Parts],
    case iolist_size(Parts1) of
        Size ->
            erase(Key),
            {ok, iolist_to_binary(lists:reverse(Parts1))};
        Got when Got < Size ->
            put(Key, {Seq + 1, Size, Parts1}),
            next(Port, Timeout)
    end.

%%% @doc The replies a port owner (caravan_port) is reassembling from chunks
%%% (docs/protocol.md, "Chunked replies"): the program sends a reply above
%%% 64 KiB as `{Id, chunk, {Seq, Size, Bytes}}' packets, Seq 0, 1, 2... in
%%% order, so that a pong never waits on the pipe behind a whole member
%%% list. Pure: the owner keeps the table and acts on what `add/7' says.
%%%
%%% Linear time: the chunks of a reply are kept as they came (newest first)
%%% and handed out as a list; the caller, not the owner, joins and decodes
%%% them (caravan_port:call/4), so a 17.5 MB answer holds the owner for no
%%% more than its chunks' arrival.
%%%
%%% A reply whose caller is gone (cancelled, timed out) is forgotten: its
%%% bytes are dropped and only its place in the sequence is kept, so the
%%% chunks still on the pipe are checked and dropped as they come.
%%%
%%% A chunk for a tag never issued or with no reply begun, a chunk out of
%%% order, a size other than the first chunk's, bytes past that size, or
%%% more than the owner's limit held at once, is a protocol error: the
%%% owner restarts the program (as for a header over its limit).
-module(caravan_port_chunks).

-export([new/0]).
-export([add/7]).
-export([forget/2]).
-export([partial/1]).
-export([join/2]).

-export_type([chunks/0, known/0]).

%% A reply begun: the next Seq expected, the size announced, the bytes
%% seen, and its chunks (newest first), or `gone' when nobody waits for it.
-record(partial, {next = 0 :: non_neg_integer(),
                  size :: pos_integer(),
                  got :: non_neg_integer(),
                  parts :: [binary()] | gone}).
-record(chunks, {replies = #{} :: #{pos_integer() => #partial{}},
                 held = 0 :: non_neg_integer()}).
-opaque chunks() :: #chunks{}.

%% What the owner knows of a chunk's tag: a caller waits for it, it was
%% issued but nobody waits any more, or it was never issued.
-type known() :: waiting | gone | unknown.

%% @doc No reply begun.
-spec new() -> chunks().
new() ->
    #chunks{}.

%% @doc A chunk `{Id, chunk, {Seq, Size, Bytes}}' arrived. `more': the reply
%% is not whole yet; `{whole, Parts}': it is, its bytes are
%% `iolist_to_binary(lists:reverse(Parts))'; `dropped': the chunk (or the
%% last one) of a reply nobody waits for; `{error, Why}': a protocol error,
%% Why a sentence for the log.
-spec add(Id, Seq, Size, Bytes, Known, Max, chunks()) ->
          {more, chunks()} | {{whole, [binary()]}, chunks()} | {dropped, chunks()}
          | {error, string()} when
      Id :: pos_integer(),
      Seq :: non_neg_integer(),
      Size :: pos_integer(),
      Bytes :: binary(),
      Known :: known(),
      Max :: pos_integer().
add(Id, _Seq, Size, _Bytes, _Known, Max, _C) when Size > Max ->
    {error, fmt("a chunked reply for tag ~b announces ~b bytes, over the ~b read",
                [Id, Size, Max])};
add(Id, Seq, _Size, <<>>, _Known, _Max, _C) ->
    {error, fmt("chunk ~b for tag ~b is empty", [Seq, Id])};
add(Id, 0, Size, Bytes, Known, Max, #chunks{replies = Replies} = C) ->
    case {Replies, Known} of
        {#{Id := _}, _} ->
            {error, fmt("chunk 0 for tag ~b again, its reply already begun", [Id])};
        {_, unknown} ->
            {error, fmt("chunk 0 for tag ~b, a tag never issued", [Id])};
        _ ->
            Parts = case Known of
                        waiting -> [];
                        gone -> gone
                    end,
            step(Id, #partial{next = 0, size = Size, got = 0, parts = Parts}, 0, Size, Bytes,
                 Max, C)
    end;
add(Id, Seq, Size, Bytes, _Known, Max, #chunks{replies = Replies} = C) ->
    case Replies of
        #{Id := P} -> step(Id, P, Seq, Size, Bytes, Max, C);
        _ -> {error, fmt("chunk ~b for tag ~b, which has no reply begun", [Seq, Id])}
    end.

%% @doc Nobody waits for reply Id any more: its bytes are dropped now, its
%% remaining chunks as they come.
-spec forget(pos_integer(), chunks()) -> chunks().
forget(Id, #chunks{replies = Replies, held = Held} = C) ->
    case Replies of
        #{Id := #partial{parts = gone}} ->
            C;
        #{Id := #partial{got = Got} = P} ->
            C#chunks{replies = Replies#{Id := P#partial{parts = gone}}, held = Held - Got};
        _ ->
            C
    end.

%% @doc How many replies are begun and not whole.
-spec partial(chunks()) -> non_neg_integer().
partial(#chunks{replies = Replies}) ->
    map_size(Replies).

%% @doc A reply that came in chunks, joined and decoded by its caller
%% (caravan_port:call/4), not by the owner: a 17.5 MB term decoded in the
%% owner held up every other reply and pong meanwhile.
-spec join(pos_integer(), [binary()]) -> {ok, term()} | {error, term()}.
join(Id, Parts) ->
    case caravan_port_frame:decode(iolist_to_binary(lists:reverse(Parts))) of
        {ok, Id, Reply} -> Reply;
        {ok, Other, _} -> {error, {bad_reply, {chunks_of, Id, carried_reply_of, Other}}};
        {chunk, _, _, _, _} -> {error, {bad_reply, {chunks_of, Id, carried_a_chunk}}};
        {error, Why} -> {error, {bad_reply, Why}}
    end.

%%%---------------------------------------------------------------------------
%%% Internal
%%%---------------------------------------------------------------------------

-spec step(pos_integer(), #partial{}, non_neg_integer(), pos_integer(), binary(), pos_integer(),
           chunks()) ->
          {more, chunks()} | {{whole, [binary()]}, chunks()} | {dropped, chunks()}
          | {error, string()}.
step(Id, #partial{next = Next}, Seq, _Size, _Bytes, _Max, _C) when Seq =/= Next ->
    {error, fmt("chunk ~b for tag ~b out of order (chunk ~b was due)", [Seq, Id, Next])};
step(Id, #partial{size = Size0}, Seq, Size, _Bytes, _Max, _C) when Size =/= Size0 ->
    {error, fmt("chunk ~b for tag ~b announces ~b bytes, its first chunk ~b",
                [Seq, Id, Size, Size0])};
step(Id, #partial{got = Got, size = Size}, Seq, _Size, Bytes, _Max, _C)
  when Got + byte_size(Bytes) > Size ->
    {error, fmt("chunk ~b for tag ~b runs past the ~b bytes announced", [Seq, Id, Size])};
step(Id, #partial{parts = Parts}, Seq, _Size, Bytes, Max, #chunks{held = Held})
  when Parts =/= gone, Held + byte_size(Bytes) > Max ->
    {error, fmt("chunk ~b for tag ~b: the chunks held would pass the ~b bytes read",
                [Seq, Id, Max])};
step(Id, #partial{got = Got, size = Size, parts = Parts} = P, Seq, _Size, Bytes, _Max,
     #chunks{replies = Replies, held = Held} = C) ->
    Got1 = Got + byte_size(Bytes),
    case {Got1 =:= Size, Parts} of
        {true, gone} ->
            {dropped, C#chunks{replies = maps:remove(Id, Replies)}};
        {true, _} ->
            {{whole, [Bytes | Parts]}, C#chunks{replies = maps:remove(Id, Replies),
                                                 held = Held - Got}};
        {false, gone} ->
            {dropped, C#chunks{replies = Replies#{Id => P#partial{next = Seq + 1, got = Got1}}}};
        {false, _} ->
            {more, C#chunks{replies = Replies#{Id => P#partial{next = Seq + 1, got = Got1,
                                                               parts = [Bytes | Parts]}},
                            held = Held + byte_size(Bytes)}}
    end.

-spec fmt(io:format(), [term()]) -> string().
fmt(Format, Args) ->
    lists:flatten(io_lib:format(Format, Args)).

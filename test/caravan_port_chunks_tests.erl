%%% Chunked replies (docs/protocol.md, "Chunked replies"): the owner's table
%%% of replies begun (caravan_port_chunks, pure), and the owner against
%%% stand-in programs that send well-formed and malformed chunk sequences.
-module(caravan_port_chunks_tests).

-include_lib("eunit/include/eunit.hrl").

-define(OWNER, caravan_port_chunks_test_owner).
-define(MAX, 1000000).

%%%---------------------------------------------------------------------------
%%% The table, pure
%%%---------------------------------------------------------------------------

%% Bin cut into packets of at most Size bytes: [{Seq, Bytes}].
cut(Bin, Size) -> cut(Bin, Size, 0).
cut(Bin, Size, Seq) when byte_size(Bin) =< Size -> [{Seq, Bin}];
cut(Bin, Size, Seq) ->
    <<B:Size/binary, Rest/binary>> = Bin,
    [{Seq, B} | cut(Rest, Size, Seq + 1)].

%% Feeds the chunks of reply Id in the order given; the last result.
feed(Id, Chunks, Size, Known, C0) ->
    lists:foldl(fun({Seq, B}, {more, C}) ->
                        caravan_port_chunks:add(Id, Seq, Size, B, Known, ?MAX, C);
                   (_, Done) -> Done
                end, {more, C0}, Chunks).

big_reply(Id) ->
    term_to_binary({Id, ok, #{members => [#{n => N, a => <<"10.0.0.1">>}
                                          || N <- lists:seq(1, 3000)]}}).

in_order_is_the_reply_test() ->
    Bin = big_reply(5),
    Chunks = cut(Bin, 1000),
    ?assert(length(Chunks) > 2),
    {{whole, Parts}, C} = feed(5, Chunks, byte_size(Bin), waiting, caravan_port_chunks:new()),
    %% Joined in the order they came, they are the reply, decoded.
    {5, ok, Result} = binary_to_term(Bin),
    ?assertEqual({ok, Result}, caravan_port_chunks:join(5, Parts)),
    ?assertEqual(0, caravan_port_chunks:partial(C)).

out_of_order_is_an_error_test() ->
    Bin = big_reply(5),
    [C0, C1, C2 | _] = cut(Bin, 1000),
    ?assertMatch({error, "chunk 2 for tag 5 out of order (chunk 1 was due)"},
                 feed(5, [C0, C2, C1], byte_size(Bin), waiting, caravan_port_chunks:new())),
    ?assertMatch({error, "chunk 0 for tag 5 again" ++ _},
                 feed(5, [C0, C0], byte_size(Bin), waiting, caravan_port_chunks:new())).

unknown_tag_is_an_error_test() ->
    New = caravan_port_chunks:new(),
    ?assertMatch({error, "chunk 0 for tag 9, a tag never issued"},
                 caravan_port_chunks:add(9, 0, 2000, <<"x">>, unknown, ?MAX, New)),
    ?assertMatch({error, "chunk 1 for tag 9, which has no reply begun"},
                 caravan_port_chunks:add(9, 1, 2000, <<"x">>, waiting, ?MAX, New)).

over_the_limit_is_an_error_test() ->
    New = caravan_port_chunks:new(),
    ?assertMatch({error, "a chunked reply for tag 3 announces 1000001 bytes" ++ _},
                 caravan_port_chunks:add(3, 0, ?MAX + 1, <<"x">>, waiting, ?MAX, New)),
    %% Two replies begun may not hold more than the limit between them.
    Half = binary:copy(<<"a">>, ?MAX div 2 + 1),
    {more, C1} = caravan_port_chunks:add(3, 0, ?MAX, Half, waiting, ?MAX, New),
    ?assertMatch({error, "chunk 0 for tag 4: the chunks held would pass" ++ _},
                 caravan_port_chunks:add(4, 0, ?MAX, Half, waiting, ?MAX, C1)).

sizes_must_agree_test() ->
    New = caravan_port_chunks:new(),
    {more, C1} = caravan_port_chunks:add(3, 0, 10, <<"abcd">>, waiting, ?MAX, New),
    ?assertMatch({error, "chunk 1 for tag 3 announces 11 bytes, its first chunk 10"},
                 caravan_port_chunks:add(3, 1, 11, <<"e">>, waiting, ?MAX, C1)),
    ?assertMatch({error, "chunk 1 for tag 3 runs past the 10 bytes announced"},
                 caravan_port_chunks:add(3, 1, 10, <<"efghijk">>, waiting, ?MAX, C1)),
    ?assertMatch({error, "chunk 1 for tag 3 is empty"},
                 caravan_port_chunks:add(3, 1, 10, <<>>, waiting, ?MAX, C1)).

%% A reply whose caller went is forgotten: its bytes are no longer held,
%% its remaining chunks are checked and dropped, and then it is gone.
forgotten_replies_are_dropped_test() ->
    New = caravan_port_chunks:new(),
    Big = binary:copy(<<"a">>, ?MAX div 2 + 1),
    {more, C1} = caravan_port_chunks:add(3, 0, ?MAX, Big, waiting, ?MAX, New),
    C2 = caravan_port_chunks:forget(3, C1),
    %% Its bytes no longer count against the limit.
    {more, C3} = caravan_port_chunks:add(4, 0, ?MAX, Big, waiting, ?MAX, C2),
    {dropped, C4} = caravan_port_chunks:add(3, 1, ?MAX, <<"b">>, waiting, ?MAX, C3),
    ?assertMatch({error, _}, caravan_port_chunks:add(3, 3, ?MAX, <<"b">>, waiting, ?MAX, C4)),
    Rest = binary:copy(<<"c">>, ?MAX - byte_size(Big) - 1),
    {dropped, C5} = caravan_port_chunks:add(3, 2, ?MAX, Rest, waiting, ?MAX, C4),
    ?assertEqual(1, caravan_port_chunks:partial(C5)),
    %% A reply whose caller went before its first chunk: dropped throughout.
    {dropped, C6} = caravan_port_chunks:add(7, 0, 2, <<"x">>, gone, ?MAX, C5),
    {dropped, C7} = caravan_port_chunks:add(7, 1, 2, <<"y">>, gone, ?MAX, C6),
    ?assertEqual(1, caravan_port_chunks:partial(C7)).

%%%---------------------------------------------------------------------------
%%% The owner against stand-in programs
%%%---------------------------------------------------------------------------

%% The first request the owner sends (liveness pings are off): id 1.
first_request() -> iolist_size(caravan_port_frame:frame({1, weird, #{}})).

chunk_packets(Id, Bin, Size) ->
    [caravan_port_frame:frame({Id, chunk, {Seq, byte_size(Bin), B}}) || {Seq, B} <- cut(Bin, Size)].

%% A program that waits for the first request, sends Script's bytes and
%% then reads on until its stdin closes. Script: [iodata() | {wait, Bytes}]
%% (reads that many bytes of requests before going on).
stand_in(Name, Script) ->
    Dir = filename:join(code:lib_dir(caravan), "chunk_stand_ins"),
    ok = filelib:ensure_dir(filename:join(Dir, "x")),
    {Lines, _} = lists:mapfoldl(
                   fun({wait, N}, K) ->
                           {io_lib:format("head -c ~b >/dev/null~n", [N]), K};
                      (Bytes, K) ->
                           File = filename:join(Dir, Name ++ "." ++ integer_to_list(K)),
                           ok = file:write_file(File, Bytes),
                           {io_lib:format("cat '~s'~n", [File]), K + 1}
                   end, 0, [{wait, first_request()} | Script]),
    Path = filename:join(Dir, Name ++ ".sh"),
    ok = file:write_file(Path, ["#!/bin/sh\n", Lines, "exec cat >/dev/null\n"]),
    ok = file:change_mode(Path, 8#755),
    Path.

with_stand_in(Name, Script, Options, Test) ->
    {setup,
     fun() ->
             Path = stand_in(Name, Script),
             {ok, Pid} = caravan_port:start_link(?OWNER, Options#{program => Path,
                                                                  liveness_interval_ms => 600000,
                                                                  backoff_min_ms => 10000}),
             unlink(Pid),
             ok = caravan_test_log:start(),
             Pid
     end,
     fun(Pid) ->
             _ = caravan_test_log:stop(),
             exit(Pid, shutdown),
             caravan_test_peer:wait_until(fun() -> not is_process_alive(Pid) end, 5000)
     end,
     fun(_) -> {timeout, 30, Test} end}.

call() -> caravan_port:call(?OWNER, weird, #{}, 10000).

counters() ->
    {ok, C} = caravan_port:counters(?OWNER),
    C.

%% The owner restarted the program for a protocol error, and said why.
protocol_error(Why) ->
    ?assertEqual({error, {port_exited, protocol_error}}, call()),
    Lines = [L || L <- caravan_test_log:lines(),
                  binary:match(L, <<"broke the protocol">>) =/= nomatch],
    ?assertMatch([_], Lines),
    [Line] = Lines,
    ?assertNotEqual(nomatch, binary:match(Line, list_to_binary(Why)), Line),
    ?assertEqual(0, maps:get(partial_replies, counters())).

%% A reply of 300 KB in chunks of 64 KiB: the caller gets it whole, in
%% order (a planted bug joining chunks in another order fails here).
chunked_reply_arrives_whole_test_() ->
    Result = #{members => [#{n => N, a => <<"10.0.0.1">>} || N <- lists:seq(1, 12000)]},
    Bin = term_to_binary({1, ok, Result}),
    Packets = chunk_packets(1, Bin, 65536),
    with_stand_in("good", [Packets], #{},
                  fun() ->
                          ?assert(byte_size(Bin) > 4 * 65536),
                          ?assertEqual({ok, Result}, call()),
                          C = counters(),
                          ?assertMatch(#{chunked_replies := 1, partial_replies := 0}, C),
                          ?assertEqual(length(Packets), maps:get(chunks, C))
                  end).

out_of_order_chunks_restart_the_program_test_() ->
    Bin = term_to_binary({1, ok, binary:copy(<<"z">>, 200000)}),
    [P0, P1, P2 | Rest] = chunk_packets(1, Bin, 65536),
    with_stand_in("order", [[P0, P2, P1 | Rest]], #{},
                  fun() -> protocol_error("chunk 2 for tag 1 out of order") end).

unknown_tag_restarts_the_program_test_() ->
    Bin = term_to_binary({99, ok, binary:copy(<<"z">>, 200000)}),
    with_stand_in("unknown", [chunk_packets(99, Bin, 65536)], #{},
                  fun() -> protocol_error("chunk 0 for tag 99, a tag never issued") end).

no_reply_begun_restarts_the_program_test_() ->
    Bin = term_to_binary({1, ok, binary:copy(<<"z">>, 200000)}),
    [_ | Rest] = chunk_packets(1, Bin, 65536),
    with_stand_in("unbegun", [Rest], #{},
                  fun() -> protocol_error("chunk 1 for tag 1, which has no reply begun") end).

over_the_limit_restarts_the_program_test_() ->
    Bin = term_to_binary({1, ok, binary:copy(<<"z">>, 300000)}),
    with_stand_in("limit", [chunk_packets(1, Bin, 65536)], #{max_reply_bytes => 200000},
                  fun() -> protocol_error("announces 300015 bytes, over the 200000 read") end).

%% The caller goes while its reply is half sent: the owner forgets the
%% bytes it held, sends a cancel, and drops the chunks that follow without
%% restarting the program.
caller_gone_mid_reply_test_() ->
    Bin = term_to_binary({1, ok, binary:copy(<<"z">>, 300000)}),
    {First, Second} = lists:split(2, chunk_packets(1, Bin, 65536)),
    Cancel = iolist_size(caravan_port_frame:frame({2, cancel, #{id => 1}})),
    with_stand_in("gone", [First, {wait, Cancel}, Second], #{},
                  fun() ->
                          {ok, OsPid} = caravan_port:os_pid(?OWNER),
                          Self = self(),
                          Caller = spawn(fun() -> Self ! {self(), call()} end),
                          caravan_test_peer:wait_until(
                            fun() -> maps:get(chunks, counters()) =:= 2 end, 10000),
                          ?assertEqual(1, maps:get(partial_replies, counters())),
                          exit(Caller, kill),
                          caravan_test_peer:wait_until(
                            fun() -> maps:get(chunks, counters()) =:= 2 + length(Second) end,
                            10000),
                          ?assertMatch(#{partial_replies := 0, chunked_replies := 0,
                                         cancels_sent := 1}, counters()),
                          ?assertEqual({ok, OsPid}, caravan_port:os_pid(?OWNER))
                  end).

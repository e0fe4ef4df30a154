#!/usr/bin/env escript
%%! -noshell
%%% `make check-leaks`: caravan_port under valgrind (memcheck) through a long
%%% mixed stream of requests: name lookups, good and bad DNS answers, DNS
%%% timeouts, Consul answers and 403s, malformed and oversize packets. Then
%%% stdin closes, the program exits, and valgrind's exit status says whether
%%% it saw any error or definite/indirect leak.
-mode(compile).

-define(ROUNDS, 300).

main([Program, TestDir]) ->
    process_flag(trap_exit, true),
    [load(TestDir, M) || M <- [caravan_test_dns_responder, caravan_test_json, caravan_test_http,
                               caravan_test_faults, caravan_test_catalog, caravan_test_consul_agent,
                               caravan_test_consul]],
    Dns = caravan_test_dns_responder:start({consul, 5}),
    Silent = caravan_test_dns_responder:start(silent),
    Consul = caravan_test_consul:start(#{}),
    %% Enough instances for an answer above ANSWER_INLINE_MAX (16 KiB), so
    %% that the worker thread reads it (answer_worker.h), not the loop.
    [ok = caravan_test_catalog:register(maps:get(catalog, Consul), <<"app">>,
                                        #{id => integer_to_binary(I), address => <<"10.0.0.1">>,
                                          port => 4370 + I})
     || I <- lists:seq(1, 100)],
    Requests = requests(caravan_test_dns_responder:server(Dns),
                        caravan_test_dns_responder:server(Silent),
                        caravan_test_catalog:url(Consul)),
    All = lists:append(lists:duplicate(?ROUNDS, Requests)),
    Dir = string:trim(os:cmd("mktemp -d")),
    Stream = filename:join(Dir, "stream"),
    Out = filename:join(Dir, "replies"),
    Frames = [frame(term_to_binary({Id, Op, Args}))
              || {Id, {Op, Args}} <- lists:zip(lists:seq(1, length(All)), All)],
    %% Garbage that carries no id: no reply is due for these.
    Garbage = [frame(<<>>), frame(<<"not a term">>), frame(binary:copy(<<0>>, 2 * 1024 * 1024))],
    ok = file:write_file(Stream, [Frames, Garbage]),
    T0 = erlang:monotonic_time(millisecond),
    %% stdin stays open a while after the stream so that slow answers
    %% (DNS timeouts, Consul) come back before the program sees EOF.
    Cmd = io_lib:format("(cat ~s; sleep 10) | valgrind --leak-check=full "
                        "--errors-for-leak-kinds=definite,indirect --error-exitcode=99 "
                        "--log-file=~s/valgrind.log ~s > ~s 2> ~s/stderr; echo rc=$?",
                        [Stream, Dir, Program, Out, Dir]),
    Rc = string:trim(os:cmd(lists:flatten(Cmd))),
    {ok, Bin} = file:read_file(Out),
    Replies = count(Bin, #{}),
    {ok, Log} = file:read_file(filename:join(Dir, "valgrind.log")),
    io:format("check-leaks: ~b requests, ~b replies ~p, ~b ms under valgrind~n",
              [length(All), maps:fold(fun(_, V, A) -> V + A end, 0, Replies), Replies,
               erlang:monotonic_time(millisecond) - T0]),
    io:format("~s", [[[L, $\n] || L <- binary:split(Log, <<"\n">>, [global]),
                                   binary:match(L, [<<"ERROR SUMMARY">>, <<"lost:">>,
                                                    <<"in use at exit">>]) =/= nomatch]]),
    caravan_test_dns_responder:stop(Dns),
    caravan_test_dns_responder:stop(Silent),
    caravan_test_catalog:stop_server(Consul),
    os:cmd("rm -rf " ++ Dir),
    case {Rc, maps:fold(fun(_, V, A) -> V + A end, 0, Replies) =:= length(All)} of
        {"rc=0", true} -> io:format("check-leaks: clean~n");
        {"rc=0", false} -> io:format("check-leaks: FAILED, replies missing~n"), halt(1);
        _ -> io:format("check-leaks: FAILED (valgrind ~s)~n", [Rc]), halt(1)
    end.

frame(B) -> <<(byte_size(B)):32, B/binary>>.

count(<<Len:32, Term:Len/binary, Rest/binary>>, Acc) ->
    Key = case binary_to_term(Term) of
              {_, ok, _} -> ok;
              {_, error, {Reason, _}} -> Reason
          end,
    count(Rest, maps:update_with(Key, fun(N) -> N + 1 end, 1, Acc));
count(_, Acc) ->
    Acc.

requests(DnsServer, SilentServer, ConsulUrl) ->
    [{dist_port, #{name => <<"app-4370">>}},
     {dist_port, #{name => <<"app-0">>}},
     {dist_port, #{name => 7}},
     {info, #{}},
     {ping, #{delay_ms => 1}},
     {nosuch, #{}},
     {srv, #{name => <<"app.service.consul">>, servers => [bin(DnsServer)]}},
     {srv, #{name => <<"app.service.consul">>, servers => [bin(DnsServer)], transport => udp}},
     {srv, #{name => <<"app.service.consul">>, servers => [bin(SilentServer)], timeout_ms => 50}},
     {addr, #{name => <<"n1.node.dc1.consul">>, servers => [bin(DnsServer)]}},
     {srv, #{name => <<"x">>, servers => [<<"not-an-address">>]}},
     {consul_health, #{url => bin(ConsulUrl), service => <<"app">>}},
     {consul_health, #{url => bin(ConsulUrl), service => <<"app">>, index => 1, wait_ms => 10}},
     {nomad_services, #{url => <<"http://127.0.0.1:1">>, service => <<"app">>}}].

bin(S) -> list_to_binary(S).

load(Dir, Mod) ->
    {ok, Mod, Bin} = compile:file(filename:join(Dir, atom_to_list(Mod) ++ ".erl"), [binary]),
    {module, Mod} = code:load_binary(Mod, atom_to_list(Mod) ++ ".erl", Bin).

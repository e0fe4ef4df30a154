#!/usr/bin/env escript
%%! -noshell
%%% HTTP discovery benchmark, side by side in one run against the Consul
%%% test server (test/caravan_test_consul.erl, started here):
%%%   - registration -> member list delivered to a subscriber: caravan's
%%%     blocking-query watch over 200 changes, and a 5 s poll loop (the
%%%     default of the polling libraries) over 10 changes at random moments;
%%%   - a 10,000-instance answer: the whole discover/1 through caravan, and
%%%     the C parser alone (bench/parse_bench) with its peak memory.
-mode(compile).

-define(CHANGES, 200).
-define(POLL_CHANGES, 10).
-define(POLL_MS, 5000).
-define(BIG, 10000).

main([Ebin, TestDir, ParseBench]) ->
    process_flag(trap_exit, true),
    true = code:add_patha(Ebin),
    [load(TestDir, M) || M <- [caravan_test_json, caravan_test_http, caravan_test_faults,
                               caravan_test_catalog, caravan_test_consul]],
    {ok, _} = application:ensure_all_started(caravan),
    Server = caravan_test_consul:start(#{}),
    try
        io:format("Consul discovery benchmark (test server at ~s)~n~n",
                  [caravan_test_catalog:url(Server)]),
        watch_latency(Server),
        poll_latency(Server),
        big_answer(Server, ParseBench)
    after
        caravan_test_catalog:stop_server(Server)
    end;
main(_) ->
    io:format(standard_error, "usage: http_bench.escript EBIN TEST_DIR PARSE_BENCH~n", []),
    halt(2).

load(Dir, Mod) ->
    {ok, Mod, Bin} = compile:file(filename:join(Dir, atom_to_list(Mod) ++ ".erl"), [binary]),
    {module, Mod} = code:load_binary(Mod, atom_to_list(Mod) ++ ".erl", Bin).

source(Server, Service) ->
    #{service => Service, basename => "app", url => caravan_test_catalog:url(Server),
      wait => 30000}.

register(Server, Service, I) ->
    ok = caravan_test_catalog:register(maps:get(catalog, Server), Service,
                                       #{id => integer_to_binary(I),
                                         address => ip(I), port => 20000 + I rem 40000}).

ip(I) -> list_to_binary(io_lib:format("10.~b.~b.~b", [I div 65536, (I div 256) rem 256, I rem 256])).

watch_latency(Server) ->
    {ok, W} = caravan:watch({consul, source(Server, <<"watched">>)}, self()),
    {members, []} = receive {caravan_watch, W, E0} -> E0 after 5000 -> error(no_first) end,
    Times = [begin
                 timer:sleep(rand:uniform(20)),
                 T0 = erlang:monotonic_time(microsecond),
                 register(Server, <<"watched">>, I),
                 wait_for_count(W, I),
                 erlang:monotonic_time(microsecond) - T0
             end || I <- lists:seq(1, ?CHANGES)],
    caravan:unwatch(W),
    {P50, P99} = {pct(Times, 50), pct(Times, 99)},
    put(watch_p50, P50),
    io:format("registration -> subscriber     p50 ms    p99 ms   changes~n"),
    io:format("  caravan blocking watch      ~8.1f  ~8.1f   ~7b~n", [P50 / 1000, P99 / 1000, ?CHANGES]).

wait_for_count(W, N) ->
    receive
        {caravan_watch, W, {members, M}} when length(M) >= N -> ok;
        {caravan_watch, W, _} -> wait_for_count(W, N)
    after 10000 -> error({change_not_seen, N})
    end.

%% What a poller at a fixed interval sees: it asks every ?POLL_MS with
%% discover/1 and notices a change at its next tick.
poll_latency(Server) ->
    Self = self(),
    Poller = spawn_link(fun() -> poll_loop(Server, Self, -1) end),
    Times = [begin
                 timer:sleep(rand:uniform(?POLL_MS)),
                 T0 = erlang:monotonic_time(microsecond),
                 register(Server, <<"polled">>, I),
                 receive {polled, N} when N >= I -> ok after ?POLL_MS * 3 -> error(poll_stuck) end,
                 erlang:monotonic_time(microsecond) - T0
             end || I <- lists:seq(1, ?POLL_CHANGES)],
    unlink(Poller),
    exit(Poller, kill),
    {P50, P99} = {pct(Times, 50), pct(Times, 99)},
    io:format("  5 s poll loop               ~8.1f  ~8.1f   ~7b~n", [P50 / 1000, P99 / 1000,
                                                                     ?POLL_CHANGES]),
    io:format("  watch p50 is ~.4fx the poll loop's~n", [get(watch_p50) / P50]).

poll_loop(Server, Parent, Last) ->
    {ok, Nodes} = caravan:discover({consul, source(Server, <<"polled">>)}),
    N = length(Nodes),
    N =/= Last andalso (Parent ! {polled, N}),
    timer:sleep(?POLL_MS),
    poll_loop(Server, Parent, N).

big_answer(Server, ParseBench) ->
    [register(Server, <<"big">>, I) || I <- lists:seq(1, ?BIG)],
    Src = source(Server, <<"big">>),
    {ok, Nodes} = caravan:discover({consul, Src}),
    ?BIG = length(Nodes),
    Times = [begin
                 T0 = erlang:monotonic_time(microsecond),
                 {ok, _} = caravan:discover({consul, Src}),
                 erlang:monotonic_time(microsecond) - T0
             end || _ <- lists:seq(1, 10)],
    {ok, OsPid} = caravan_port:os_pid(caravan_lookup),
    {ok, Status} = file:read_file("/proc/" ++ integer_to_list(OsPid) ++ "/status"),
    {match, [Hwm]} = re:run(Status, "VmHWM:\\s+([0-9]+)", [{capture, all_but_first, list}]),
    io:format("~n~b-instance Consul answer~n", [?BIG]),
    io:format("  caravan:discover/1 end to end: p50 ~.1f ms (HTTP, parse, encode, decode, "
              "10,000 node names)~n", [pct(Times, 50) / 1000]),
    io:format("  caravan_port peak RSS (VmHWM) after these: ~s KiB~n", [Hwm]),
    File = string:trim(os:cmd("mktemp")),
    Curl = "curl -s -o " ++ File ++ " '" ++ caravan_test_catalog:url(Server) ++
        "/v1/health/service/big?passing=true'",
    ServerTimes = [begin
                       T0 = erlang:monotonic_time(microsecond),
                       "" = os:cmd(Curl),
                       erlang:monotonic_time(microsecond) - T0
                   end || _ <- lists:seq(1, 5)],
    io:format("  of which the test server (Erlang JSON encoding) takes: p50 ~.1f ms "
              "(curl alone)~n", [pct(ServerTimes, 50) / 1000]),
    io:format("~s", [os:cmd(ParseBench ++ " " ++ File ++ " 20")]),
    file:delete(File).

pct(Samples, P) ->
    Sorted = lists:sort(Samples),
    lists:nth(max(1, min(length(Sorted), round(P / 100 * length(Sorted)))), Sorted).

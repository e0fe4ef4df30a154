#!/usr/bin/env escript
%%! -noshell
%%% DNS benchmark, side by side in one run against one BIND (started here on
%%% a free port, stopped by its pid): SRV lookups per second and latency,
%%% sequential and 50-way concurrent, through caravan (c-ares in
%%% caravan_port, over TCP and over UDP+EDNS) and through OTP's inet_res.
%%% inet_res returns SRV records only; "inet_res + A" also looks up each
%%% target's address, which is what caravan's answer already contains.
%%% Each row shows its ratios to both (sequential / 50-way).
%%% Then A and AAAA lookups (what `type => a | aaaa' sources ask) of 3 and 40
%%% addresses, through caravan (UDP + EDNS, its default for them, and TCP)
%%% and through inet_res:lookup/3 of the same records on the same BIND; only
%%% complete answers count in the 50-way rate, as for SRV.
%%% CARAVAN_BENCH_ROWS set: one ROW line per figure too (bench/run.sh).
-mode(compile).

-define(SEQUENTIAL, 2000).
-define(CONCURRENT, 4000).
-define(WORKERS, 50).

main([Ebin, TestDir]) ->
    %% A crashing worker must not skip the `after` that stops BIND.
    process_flag(trap_exit, true),
    true = code:add_patha(Ebin),
    {ok, _, _} = compile_helper(TestDir),
    {ok, _} = application:ensure_all_started(caravan),
    Dir = string:trim(os:cmd("mktemp -d")),
    Records = caravan_test_bind:srv_records("app3", 3, 3, "app3.service") ++
        caravan_test_bind:srv_records("app40", 40, 40, "app40.service") ++
        addr_records(),
    Bind = caravan_test_bind:start(Dir, #{records => Records}),
    try
        run(caravan_test_bind:port(Bind))
    after
        caravan_test_bind:stop(Bind),
        os:cmd("rm -rf " ++ Dir)
    end;
main(_) ->
    io:format(standard_error, "usage: dns_bench.escript EBIN TEST_DIR~n", []),
    halt(2).

compile_helper(TestDir) ->
    {ok, Mod, Bin} = compile:file(filename:join([TestDir, "support", "caravan_test_bind.erl"]),
                                  [binary]),
    {module, Mod} = code:load_binary(Mod, "caravan_test_bind.erl", Bin),
    {ok, Mod, Bin}.

run(Port) ->
    Server = "127.0.0.1:" ++ integer_to_list(Port),
    Ns = [{{127, 0, 0, 1}, Port}],
    Methods =
        [{"caravan (TCP, default)", fun(Name) -> caravan_srv(Name, Server, tcp) end},
         {"caravan (UDP + EDNS)", fun(Name) -> caravan_srv(Name, Server, udp) end},
         {"inet_res (SRV only)", fun(Name) -> inet_res_srv(Name, Ns) end},
         {"inet_res + A per target", fun(Name) -> inet_res_complete(Name, Ns) end}],
    io:format("DNS SRV benchmark against BIND on ~s; ~b sequential, ~b over ~b workers~n",
              [Server, ?SEQUENTIAL, ?CONCURRENT, ?WORKERS]),
    lists:foreach(fun(Name) -> bench_name(Name, Methods) end,
                  ["app3.service.consul", "app40.service.consul"]),
    io:format("~nDNS A/AAAA benchmark, same BIND; ~b sequential, ~b over ~b workers~n",
              [?SEQUENTIAL, ?CONCURRENT, ?WORKERS]),
    [bench_addr(Name, Type, Server, Ns)
     || {Name, Type} <- [{"a3.consul", a}, {"a40.consul", a}, {"aaaa3.consul", aaaa},
                         {"aaaa40.consul", aaaa}]],
    ok.

%% 3 and 40 addresses of each family. The AAAA ones are ULA text in the
%% zone only: nothing is sent to them.
addr_records() ->
    [io_lib:format("a~b A 127.2.~b.~b", [N, N, I]) || N <- [3, 40], I <- lists:seq(1, N)] ++
        [io_lib:format("aaaa~b AAAA fd00::~b:~b", [N, N, I]) || N <- [3, 40],
                                                               I <- lists:seq(1, N)].

bench_addr(Name, Type, Server, Ns) ->
    Family = case Type of a -> inet; aaaa -> inet6 end,
    Methods = [{"caravan (UDP + EDNS, default)", fun(N) -> caravan_addr(N, Server, udp, Family) end},
               {"caravan (TCP)", fun(N) -> caravan_addr(N, Server, tcp, Family) end},
               {"inet_res:lookup/3", fun(N) -> {length(inet_res:lookup(N, in, Type,
                                                                      [{nameservers, Ns}])), 0}
                                     end}],
    io:format("~n~s (~s)~n", [Name, Type]),
    io:format("  ~-30s ~6s ~9s ~9s ~9s ~9s ~6s~n",
              ["method", "addrs", "seq/s", "p50 us", "p99 us", "50-way/s", "short"]),
    Results = [{Label, measure(Fun, Name)} || {Label, Fun} <- Methods],
    {_, #{seq_rate := BaseSeq, conc_rate := BaseConc}} = lists:keyfind("inet_res:lookup/3", 1,
                                                                       Results),
    [io:format("  ~-30s ~6b ~9b ~9b ~9b ~9b ~6b   (~.2fx / ~.2fx inet_res)~n",
               [Label, R, round(S), P50, P99, round(C), Short, S / BaseSeq, C / BaseConc])
     || {Label, #{records := R, seq_rate := S, p50 := P50, p99 := P99, conc_rate := C,
                  short := Short}} <- Results],
    rows(Name ++ " " ++ atom_to_list(Type), Results).

caravan_addr(Name, Server, Transport, Family) ->
    case caravan_dns:lookup_addr(Name, #{servers => [Server], transport => Transport,
                                     family => Family}) of
        {ok, Addresses} -> {length(Addresses), 0};
        {error, _} -> {0, 0}
    end.

bench_name(Name, Methods) ->
    io:format("~n~s~n", [Name]),
    io:format("  ~-26s ~8s ~9s ~9s ~9s ~9s ~9s ~6s~n",
              ["method", "records", "addrs", "seq/s", "p50 us", "p99 us", "50-way/s", "short"]),
    Results = [{Label, measure(Fun, Name)} || {Label, Fun} <- Methods],
    {_, #{seq_rate := BaseSeq, conc_rate := BaseConc}} = lists:keyfind("inet_res (SRV only)", 1,
                                                                       Results),
    %% Complete answers (every target's address) compare with inet_res + A,
    %% which does the same work; the goal is >= 1.0x in the 50-way column.
    {_, #{seq_rate := FullSeq, conc_rate := FullConc}} = lists:keyfind("inet_res + A per target",
                                                                       1, Results),
    [io:format("  ~-26s ~8b ~9b ~9b ~9b ~9b ~9b ~6b   (~.2fx / ~.2fx inet_res;"
               " ~.2fx / ~.2fx inet_res + A)~n",
               [Label, R, A, round(S), P50, P99, round(C), Short, S / BaseSeq, C / BaseConc,
                S / FullSeq, C / FullConc])
     || {Label, #{records := R, addrs := A, seq_rate := S, p50 := P50, p99 := P99,
                  conc_rate := C, short := Short}} <- Results],
    io:format("  (short: 50-way answers with fewer records or addresses than the first, "
              "errors included; the 50-way rate counts only the others)~n"),
    rows(Name ++ " srv", Results).

%% With CARAVAN_BENCH_ROWS set, machine-readable lines beside the table, for
%% bench/compare.escript: ROW, bench, row, value, unit, which way is better,
%% and `reference' for inet_res's rows (OTP's code, the same in every build).
rows(What, Results) ->
    os:getenv("CARAVAN_BENCH_ROWS") =:= false orelse
        [io:format("ROW\tdns\t~ts, ~ts: ~ts\t~w\t~s\t~s~s~n",
                   [What, Label, Stat, V, Unit, Better,
                    case lists:prefix("inet_res", Label) of
                        true -> "\treference";
                        false -> ""
                    end])
         || {Label, M} <- Results,
            {Stat, Key, Unit, Better} <- [{"seq", seq_rate, "/s", higher},
                                          {"p50", p50, "us", lower},
                                          {"p99", p99, "us", lower},
                                          {"50-way", conc_rate, "/s", higher}],
            V <- [maps:get(Key, M)]],
    ok.

measure(Fun, Name) ->
    {Records, Addrs} = Fun(Name),
    _ = [Fun(Name) || _ <- lists:seq(1, 100)], % warm up
    Times = [timed(Fun, Name) || _ <- lists:seq(1, ?SEQUENTIAL)],
    SeqRate = ?SEQUENTIAL / (lists:sum(Times) / 1.0e6),
    T0 = erlang:monotonic_time(microsecond),
    Self = self(),
    Per = ?CONCURRENT div ?WORKERS,
    Whole = {Records, Addrs},
    Pids = [spawn_link(fun() ->
                               Short = length([S || _ <- lists:seq(1, Per),
                                                    (S = Fun(Name)) =/= Whole]),
                               Self ! {done, self(), Short}
                       end)
            || _ <- lists:seq(1, ?WORKERS)],
    Short = lists:sum([receive {done, P, N} -> N end || P <- Pids]),
    ConcRate = (?CONCURRENT - Short) / ((erlang:monotonic_time(microsecond) - T0) / 1.0e6),
    #{records => Records, addrs => Addrs, seq_rate => SeqRate, p50 => pct(Times, 50),
      p99 => pct(Times, 99), conc_rate => ConcRate, short => Short}.

timed(Fun, Name) ->
    T0 = erlang:monotonic_time(microsecond),
    {_, _} = Fun(Name),
    erlang:monotonic_time(microsecond) - T0.

caravan_srv(Name, Server, Transport) ->
    case caravan:lookup_srv(Name, #{servers => [Server], transport => Transport}) of
        {ok, Records} -> {length(Records), length([A || #{addresses := As} <- Records, A <- As])};
        {error, _} -> {0, 0} % counted as an empty answer; visible in the records column
    end.

inet_res_srv(Name, Ns) ->
    {ok, Msg} = inet_res:resolve(Name, in, srv, [{nameservers, Ns}]),
    {length([R || R <- inet_dns:msg(Msg, anlist), inet_dns:rr(R, type) =:= srv]),
     length([R || R <- inet_dns:msg(Msg, arlist), inet_dns:rr(R, type) =:= a])}.

inet_res_complete(Name, Ns) ->
    {ok, Msg} = inet_res:resolve(Name, in, srv, [{nameservers, Ns}]),
    Srv = [inet_dns:rr(R, data) || R <- inet_dns:msg(Msg, anlist), inet_dns:rr(R, type) =:= srv],
    Additional = [inet_dns:rr(R, domain) || R <- inet_dns:msg(Msg, arlist),
                                            inet_dns:rr(R, type) =:= a],
    Addrs = [case lists:member(T, Additional) of
                 true -> 1;
                 false -> length(inet_res:lookup(T, in, a, [{nameservers, Ns}]))
             end || {_, _, _, T} <- Srv],
    {length(Srv), lists:sum(Addrs)}.

pct(Samples, P) ->
    Sorted = lists:sort(Samples),
    lists:nth(max(1, min(length(Sorted), round(P / 100 * length(Sorted)))), Sorted).

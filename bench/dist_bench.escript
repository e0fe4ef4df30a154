#!/usr/bin/env escript
%%! -noshell
%%% Distribution benchmark, all modes side by side in one run:
%%%   caravan        -start_epmd false -epmd_module caravan_epmd
%%%   epmd           stock erl_epmd against a real epmd the benchmark starts
%%%                  (on a private port) and stops by its pid
%%%   erl_epmd_port  stock erl_epmd with -erl_epmd_port (OTP's own epmd-less
%%%                  mode: every node on one fixed port, one address each)
%%% Figures are printed with ratios to stock epmd; nothing is asserted.
%%% The C program timed against `cat' is EBIN's build's (EBIN/../priv).
%%% CARAVAN_BENCH_ROWS set: one ROW line per figure too (bench/run.sh).
-mode(compile).

-define(CONNECTS, 300).
-define(PAUSE_MS, 10).
-define(LOOKUPS, 20000).
-define(COOKIE, "caravan-bench").

main([Ebin, BenchDir]) ->
    {ok, Mod, Bin} = compile:file(filename:join(BenchDir, "caravan_bench_node.erl"),
                                  [binary, report]),
    Ctx = #{ebin => Ebin, mod => Mod, bin => Bin},
    io:format("caravan distribution benchmark: ~b connects per mode, ~b lookups~n~n",
              [?CONNECTS, ?LOOKUPS]),
    Epmd = start_epmd(),
    try
        Caravan = bench_caravan(Ctx),
        Stock = bench_epmd(Ctx, Epmd),
        Fixed = bench_erl_epmd_port(Ctx),
        report(Caravan, Stock, Fixed, Epmd),
        port_floor(Ebin)
    after
        stop_epmd(Epmd)
    end;
main(_) ->
    io:format(standard_error, "usage: dist_bench.escript EBIN BENCH_DIR~n", []),
    halt(2).

%%% The C program against its floor: an Erlang port echoing through `cat'

%% Both ports run from this escript's VM, one after the other, with the same
%% flags (escript's defaults: no +sbwt, so scheduler wake-ups count, as they
%% do in a node that uses caravan with default flags), and the same packet
%% sizes: the dist_port request, echoed back by cat, answered by the program.
port_floor(Ebin) ->
    Program = filename:join([filename:dirname(Ebin), "priv", "caravan_port"]),
    Req = term_to_binary({1, dist_port, #{name => <<"app-4370">>}}),
    Prog = port_round_trips(Program, [], Req),
    Cat = port_round_trips(os:find_executable("cat"), [], Req),
    {P50, P99} = {pct(Prog, 50), pct(Prog, 99)},
    {C50, C99} = {pct(Cat, 50), pct(Cat, 99)},
    io:format("~nport round trip (ns), {packet,4}, this VM's flags: ~s~n",
              [vm_flags()]),
    io:format("                                   p50      p99~n"),
    io:format("  caravan_port dist_port    ~10b ~8b   ~.2fx cat~n", [P50, P99, P50 / C50]),
    io:format("  cat echo (the floor)      ~10b ~8b~n", [C50, C99]),
    io:format("target: dist_port round trip <= 1.2x the cat echo: ~ts (~.2fx)~n",
              [met(P50 / C50 =< 1.2), P50 / C50]),
    row("port round trip, caravan_port dist_port, p50", P50, "ns", lower),
    row("port round trip, caravan_port dist_port, p99", P99, "ns", lower),
    ref("port round trip, cat echo (the floor), p50", C50, "ns", lower),
    row("port round trip, caravan_port dist_port / cat echo, p50", P50 / C50, "x", lower).

vm_flags() ->
    io_lib:format("escript's defaults, ~b schedulers, ERL_FLAGS=~s (no +sbwt none)",
                  [erlang:system_info(schedulers_online),
                   case os:getenv("ERL_FLAGS") of false -> "unset"; F -> F end]).

port_round_trips(Exe, Args, Req) ->
    Port = open_port({spawn_executable, Exe}, [{args, Args}, {packet, 4}, binary]),
    Once = fun() ->
                   T0 = erlang:monotonic_time(nanosecond),
                   true = port_command(Port, Req),
                   receive {Port, {data, _}} -> ok after 5000 -> error(no_echo) end,
                   erlang:monotonic_time(nanosecond) - T0
           end,
    _ = [Once() || _ <- lists:seq(1, 1000)],
    Times = [Once() || _ <- lists:seq(1, ?LOOKUPS)],
    port_close(Port),
    Times.

%%% The three modes

bench_caravan(Ctx) ->
    Args = ["-start_epmd", "false", "-epmd_module", "caravan_epmd"],
    {PA, _} = start(Ctx, "app-" ++ integer_to_list(free_port({127, 0, 0, 1})), "127.0.0.1",
                    Args, []),
    {PB, NB} = start(Ctx, "app-" ++ integer_to_list(free_port({127, 0, 0, 1})), "127.0.0.1",
                     Args, []),
    Connect = connect_times(PA, NB),
    Name = atom_to_list(NB) -- "@127.0.0.1",
    PortPlease = {caravan_epmd, port_please, [Name, {127, 0, 0, 1}]},
    Cached = call_times(PA, none, PortPlease),
    Uncached = call_times(PA, {ets, delete, [caravan_epmd_ports, Name]}, PortPlease),
    RoundTrip = call_times(PA, none, {caravan_port, call, [caravan_epmd_port, dist_port,
                                                           #{name => <<"app-4370">>}, 1000]}),
    {ok, OsPid} = peer:call(PA, caravan_port, os_pid, [caravan_epmd_port]),
    Rss = rss_kib(OsPid),
    Anon = status_kib(OsPid, <<"RssAnon:">>),
    stop([PA, PB]),
    #{connect => Connect, cached => Cached, uncached => Uncached, round_trip => RoundTrip,
      rss_kib => Rss, anon_kib => Anon}.

bench_epmd(Ctx, {_Port, EpmdPort, _OsPid}) ->
    Env = [{"ERL_EPMD_PORT", integer_to_list(EpmdPort)}],
    Args = ["-start_epmd", "false"],
    {PA, _} = start(Ctx, "stock-a", "127.0.0.1", Args, Env),
    {PB, NB} = start(Ctx, "stock-b", "127.0.0.1", Args, Env),
    Connect = connect_times(PA, NB),
    PortPlease = call_times(PA, none, {erl_epmd, port_please, ["stock-b", {127, 0, 0, 1}]}),
    stop([PA, PB]),
    #{connect => Connect, port_please => PortPlease}.

bench_erl_epmd_port(Ctx) ->
    Port = integer_to_list(free_port({127, 0, 0, 2})),
    Args = fun(Ip) -> ["-start_epmd", "false", "-erl_epmd_port", Port,
                       "-kernel", "inet_dist_use_interface", Ip] end,
    {PA, _} = start(Ctx, "fixed", "127.0.0.2", Args("{127,0,0,2}"), []),
    {PB, NB} = start(Ctx, "fixed", "127.0.0.3", Args("{127,0,0,3}"), []),
    Connect = connect_times(PA, NB),
    stop([PA, PB]),
    #{connect => Connect}.

%%% Measuring

connect_times(Peer, Target) ->
    _ = peer:call(Peer, caravan_bench_node, connect_times, [Target, 20, ?PAUSE_MS], 60000),
    peer:call(Peer, caravan_bench_node, connect_times, [Target, ?CONNECTS, ?PAUSE_MS], 120000).

call_times(Peer, Setup, Fun) ->
    _ = peer:call(Peer, caravan_bench_node, call_times, [Setup, Fun, 1000], 60000),
    peer:call(Peer, caravan_bench_node, call_times, [Setup, Fun, ?LOOKUPS], 120000).

start(#{ebin := Ebin, mod := Mod, bin := Bin}, Name, Host, Args, Env) ->
    {ok, Peer, Node} = peer:start(#{name => Name, host => Host, longnames => true,
                                    connection => standard_io, env => Env,
                                    args => Args ++ ["-pa", Ebin, "-setcookie", ?COOKIE,
                                                     "-connect_all", "false"]}),
    {module, Mod} = peer:call(Peer, code, load_binary, [Mod, "caravan_bench_node.erl", Bin]),
    {Peer, Node}.

stop(Peers) -> [peer:stop(P) || P <- Peers].

%% A real epmd on a private port, in the foreground so we hold its pid.
start_epmd() ->
    Exe = os:find_executable("epmd"),
    EpmdPort = free_port({127, 0, 0, 1}),
    Port = open_port({spawn_executable, Exe},
                     [{args, ["-port", integer_to_list(EpmdPort), "-address", "127.0.0.1"]},
                      exit_status, stderr_to_stdout]),
    {os_pid, OsPid} = erlang:port_info(Port, os_pid),
    wait_listening(EpmdPort, 100),
    {Port, EpmdPort, OsPid}.

stop_epmd({Port, _EpmdPort, OsPid}) ->
    os:cmd("kill " ++ integer_to_list(OsPid)),
    receive {Port, {exit_status, _}} -> ok after 5000 -> os:cmd("kill -9 " ++ integer_to_list(OsPid)) end,
    ok.

wait_listening(_Port, 0) -> error(epmd_did_not_start);
wait_listening(Port, N) ->
    case gen_tcp:connect({127, 0, 0, 1}, Port, [], 100) of
        {ok, S} -> gen_tcp:close(S);
        {error, _} -> timer:sleep(20), wait_listening(Port, N - 1)
    end.

free_port(Ip) ->
    {ok, S} = gen_tcp:listen(0, [{ip, Ip}]),
    {ok, P} = inet:port(S),
    gen_tcp:close(S),
    P.

rss_kib(OsPid) ->
    status_kib(OsPid, <<"VmRSS:">>).

status_kib(OsPid, Key) ->
    {ok, Status} = file:read_file("/proc/" ++ integer_to_list(OsPid) ++ "/status"),
    [Line] = [L || L <- binary:split(Status, <<"\n">>, [global]),
                   binary:match(L, Key) =/= nomatch],
    [_, Kib | _] = string:lexemes(binary_to_list(Line), " \t"),
    list_to_integer(Kib).

%%% Report

report(Caravan, Stock, Fixed, {_, _, EpmdOsPid}) ->
    Us = fun(Samples) -> {pct(Samples, 50), pct(Samples, 90), pct(Samples, 99)} end,
    {CM, C90, _} = Us(maps:get(connect, Caravan)),
    {SM, S90, _} = Us(maps:get(connect, Stock)),
    {FM, F90, _} = Us(maps:get(connect, Fixed)),
    io:format("net_kernel:connect_node/1 (us)      median      p90   median vs stock epmd~n"),
    io:format("  caravan_epmd                  ~10b ~8b   ~.2fx~n", [CM, C90, CM / SM]),
    io:format("  stock epmd                    ~10b ~8b   1.00x~n", [SM, S90]),
    io:format("  -erl_epmd_port (OTP)          ~10b ~8b   ~.2fx~n", [FM, F90, FM / SM]),
    row("connect_node/1, caravan_epmd, median", CM, "us", lower),
    row("connect_node/1, caravan_epmd, p90", C90, "us", lower),
    ref("connect_node/1, stock epmd, median", SM, "us", lower),
    ref("connect_node/1, -erl_epmd_port, median", FM, "us", lower),
    row("connect_node/1, caravan_epmd / stock epmd, median", CM / SM, "x", lower),
    {Ca50, _, Ca99} = Us(maps:get(cached, Caravan)),
    {Un50, _, Un99} = Us(maps:get(uncached, Caravan)),
    {Rt50, _, Rt99} = Us(maps:get(round_trip, Caravan)),
    {Pp50, _, Pp99} = Us(maps:get(port_please, Stock)),
    io:format("~nlookups (ns)                           p50      p99   p50 vs stock port_please~n"),
    io:format("  caravan port_please, cached   ~10b ~8b   ~.4fx~n", [Ca50, Ca99, Ca50 / Pp50]),
    io:format("  caravan port_please, uncached ~10b ~8b   ~.4fx~n", [Un50, Un99, Un50 / Pp50]),
    io:format("  caravan dist_port round trip  ~10b ~8b   ~.4fx~n", [Rt50, Rt99, Rt50 / Pp50]),
    io:format("  stock erl_epmd port_please    ~10b ~8b   1.0000x~n", [Pp50, Pp99]),
    [row(Name, V, "ns", lower)
     || {Name, V} <- [{"caravan port_please, cached, p50", Ca50},
                      {"caravan port_please, cached, p99", Ca99},
                      {"caravan port_please, uncached, p50", Un50},
                      {"caravan port_please, uncached, p99", Un99},
                      {"caravan dist_port round trip, p50", Rt50},
                      {"caravan dist_port round trip, p99", Rt99}]],
    ref("stock erl_epmd port_please, p50", Pp50, "ns", lower),
    Rss = maps:get(rss_kib, Caravan),
    EpmdRss = rss_kib(EpmdOsPid),
    io:format("~nresident memory (KiB)~n"),
    Anon = maps:get(anon_kib, Caravan),
    io:format("  caravan_port                  ~10b   (~.2fx epmd)~n", [Rss, Rss / EpmdRss]),
    %% The rest is pages of files (the program, libc, ld.so) mapped as they
    %% were touched, with the kernel's fault-around: shared with every
    %% process using them, and varying with which functions ran.
    io:format("    of which anonymous (its own)  ~8b~n", [Anon]),
    io:format("  epmd                          ~10b~n", [EpmdRss]),
    row("resident memory, caravan_port", Rss, "KiB", lower),
    row("resident memory, caravan_port, anonymous", Anon, "KiB", lower),
    io:format("~ntargets: connect median <= 0.85x stock epmd: ~ts (~.2fx); "
              "cached port_please p50 <= 2 us: ~ts (~b ns);~n"
              "         C round trip p50 <= 50 us: ~ts (~b ns); caravan_port RSS <= 4 MiB: ~ts "
              "(~b KiB)~n",
              [met(CM / SM =< 0.85), CM / SM, met(Ca50 =< 2000), Ca50,
               met(Rt50 =< 50000), Rt50, met(Rss =< 4096), Rss]).

%% With CARAVAN_BENCH_ROWS set, a machine-readable line beside the human
%% one, for bench/compare.escript: ROW, bench, row, value, unit, which way
%% is better (lower or higher), and `reference' for a figure of code that
%% is not caravan's (stock epmd, cat), the same in every build.
row(Name, Value, Unit, Better) -> row(Name, Value, Unit, Better, "").

ref(Name, Value, Unit, Better) -> row(Name, Value, Unit, Better, "\treference").

row(Name, Value, Unit, Better, Ref) ->
    os:getenv("CARAVAN_BENCH_ROWS") =:= false orelse
        io:format("ROW\tdist\t~ts\t~w\t~s\t~s~s~n", [Name, Value, Unit, Better, Ref]).

met(true) -> "met";
met(false) -> "MISSED".

pct(Samples, P) ->
    Sorted = lists:sort(Samples),
    N = length(Sorted),
    lists:nth(max(1, min(N, round(P / 100 * N))), Sorted).

#!/usr/bin/env escript
%%! -noshell +sbwt none +sbwtdcpu none +sbwtdio none
%%% Cluster benchmark: 32 nodes on this machine, all named app-PORT@127.0.1.x
%%% (one port, one loopback address each), no epmd.
%%%   - cold start to full mesh (every node sees 31 others), measured from
%%%     the moment the last node booted and started its cluster: from DNS
%%%     SRV records and from DNS A records (`type => a', basename and port
%%%     from each node's own name; BIND, polled every 1 s), and from the
%%%     Consul test server (watched);
%%%   - join latency with blocking queries: a record added -> every node
%%%     connected to the newcomer, p50/p99 over repeated joins, with the
%%%     stages (all nodes have the new list, first and last nodeup) and the
%%%     machine's CPU time per join.
%%%
%%% Both run twice, side by side: nodes with the VM's default flags, and
%%% nodes configured as VMs sharing a host's cores should be (one scheduler
%%% each, no busy waiting: the flags for a container given a fraction of a
%%% core). 33 VMs on this machine's 2 cores is such a host; with default
%%% flags every VM runs 2 schedulers that spin before sleeping, and a join,
%%% which wakes every VM at once, spends half its CPU on that.
%%% CARAVAN_BENCH_NODE_ARGS adds VM flags to every node in both runs (e.g.
%%% "-connect_all false" to see what global's syncing costs);
%%% CARAVAN_BENCH_NODES changes the count (to see how join latency scales).
%%% The script's own VM (the Consul test server) does not busy-wait either.
%%% A build without `type => a' DNS sources (an older checkout, BASELINE in
%%% bench/run.sh) skips that row. CARAVAN_BENCH_ROWS set: one ROW line per
%%% figure too (bench/run.sh).
-mode(compile).

-define(NODES, list_to_integer(os:getenv("CARAVAN_BENCH_NODES", "32"))).
-define(JOINS, 20).
-define(POLL_MS, 1000).
%% A join's CPU is counted over this window after the record is added.
-define(CPU_WINDOW_MS, 300).
-define(SHARED_HOST_FLAGS, ["+S", "1", "+SDcpu", "1", "+SDio", "1",
                            "+sbwt", "none", "+sbwtdcpu", "none", "+sbwtdio", "none"]).

main([Ebin, TestDir]) ->
    process_flag(trap_exit, true),
    true = code:add_patha(Ebin),
    BenchDir = filename:dirname(escript:script_name()),
    {ok, caravan_bench_node, NodeBin} =
        compile:file(filename:join(BenchDir, "caravan_bench_node.erl"), [binary]),
    put(node_module, NodeBin),
    [load(TestDir, M) || M <- [caravan_test_bind, caravan_test_json, caravan_test_http,
                               caravan_test_faults, caravan_test_catalog, caravan_test_consul_agent,
                               caravan_test_consul]],
    {ok, _} = application:ensure_all_started(caravan),
    Port = free_port(),
    Ips = ["127.0.1." ++ integer_to_list(I) || I <- lists:seq(1, ?NODES + 1)],
    Dir = string:trim(os:cmd("mktemp -d")),
    Records = lists:append([["app.service SRV 1 1 " ++ integer_to_list(Port) ++ " " ++ label(Ip)
                             ++ ".node.dc1", label(Ip) ++ ".node.dc1 A " ++ Ip]
                            || Ip <- lists:sublist(Ips, ?NODES)])
        ++ ["appa A " ++ Ip || Ip <- lists:sublist(Ips, ?NODES)],
    Bind = caravan_test_bind:start(Dir, #{records => Records}),
    Consul = caravan_test_consul:start(#{}),
    Catalog = caravan_test_catalog:catalog(Consul),
    [ok = caravan_test_catalog:register(Catalog, <<"app">>, #{id => list_to_binary(Ip),
                                                             address => list_to_binary(Ip),
                                                             port => Port})
     || Ip <- lists:sublist(Ips, ?NODES)],
    io:format("cluster benchmark: ~b nodes app-~b@127.0.1.x, ~b cores, ~b joins per run~n"
              "shared-host flags: ~s~n~n",
              [?NODES, Port, erlang:system_info(logical_processors_available), ?JOINS,
               lists:join(" ", ?SHARED_HOST_FLAGS)]),
    try
        Env = #{ebin => Ebin, port => Port, ips => Ips, catalog => Catalog,
                dns => {dns, #{query => "app.service.consul", basename => "app",
                               servers => [caravan_test_bind:server(Bind)]}},
                dns_a => {dns, #{query => "appa.consul", type => a,
                                 servers => [caravan_test_bind:server(Bind)]}},
                consul => {consul, #{service => "app", basename => "app",
                                     url => caravan_test_catalog:url(Consul), wait => 30000}}},
        Extra = string:lexemes(os:getenv("CARAVAN_BENCH_NODE_ARGS", ""), " "),
        {module, _} = code:ensure_loaded(caravan_dns),
        put(dns_a, erlang:function_exported(caravan_dns, types, 1)),
        Default = run(Env#{args => Extra}),
        Shared = run(Env#{args => ?SHARED_HOST_FLAGS ++ Extra}),
        report(Default, Shared)
    after
        caravan_test_catalog:stop_server(Consul),
        caravan_test_bind:stop(Bind),
        os:cmd("rm -rf " ++ Dir)
    end;
main(_) ->
    io:format(standard_error, "usage: cluster_bench.escript EBIN TEST_DIR~n", []),
    halt(2).

%% One configuration: both cold starts, then the joins.
run(#{ips := Ips, dns := Dns, dns_a := DnsA, consul := Consul} = Env) ->
    Members = lists:sublist(Ips, ?NODES),
    {DnsMs, DnsNodes} = cold_start(Env, Members, Dns),
    stop_nodes(DnsNodes),
    DnsAMs = case get(dns_a) of
                 true ->
                     {Ms, DnsANodes} = cold_start(Env, Members, DnsA),
                     stop_nodes(DnsANodes),
                     Ms;
                 false ->
                     none
             end,
    {ConsulMs, Nodes} = cold_start(Env, Members, Consul),
    Joins = joins(Env, lists:last(Ips), Nodes),
    stop_nodes(Nodes),
    Joins#{dns_mesh => DnsMs, dns_a_mesh => DnsAMs, consul_mesh => ConsulMs}.

%% Boots every node first (booting 32 VMs on 2 cores takes a while and is
%% not caravan's doing), then starts all clusters and times the mesh.
cold_start(Env, Ips, Source) ->
    Nodes = pmap(fun(Ip) -> start_node(Env, Ip) end, Ips),
    T0 = now_ms(),
    pmap(fun({P, _}) -> start_cluster(P, Source) end, Nodes),
    wait_mesh(Nodes, 120000),
    {now_ms() - T0, Nodes}.

joins(#{consul := Source, catalog := Catalog, port := Port} = Env, Ip, Nodes) ->
    {PN, Newcomer} = start_node(Env, Ip),
    start_cluster(PN, Source),
    [peer:call(P, caravan_bench_node, start_stage_tracer, [app]) || {P, _} <- Nodes],
    Id = list_to_binary(Ip),
    Samples = [begin
                   Cpu = cpu_after(?CPU_WINDOW_MS),
                   %% Wall clock: the nodes note the times of their stages
                   %% with the same clock, so no polling delay is counted.
                   T0 = erlang:system_time(microsecond),
                   ok = caravan_test_catalog:register(Catalog, <<"app">>,
                                                      #{id => Id, address => Id, port => Port}),
                   wait_all_see(Nodes, Newcomer, true, 30000),
                   Sample = join_sample(Nodes, Newcomer, T0, Cpu),
                   ok = caravan_test_catalog:deregister(Catalog, <<"app">>, Id),
                   wait_all_see(Nodes, Newcomer, false, 30000),
                   [peer:call(P, caravan_bench_node, forget_stages, [Newcomer]) || {P, _} <- Nodes],
                   timer:sleep(100),
                   Sample
               end || _ <- lists:seq(1, ?JOINS)],
    peer:stop(PN),
    maps:from_list([{K, [maps:get(K, S) || S <- Samples]}
                    || K <- [joined, listed, first_up, cpu_ms]]).

%% One join as the nodes saw it: when the last of them had the new member
%% list, when the first and the last connection to the newcomer came up.
join_sample(Nodes, Newcomer, T0, Cpu) ->
    Ups = [peer:call(P, caravan_bench_node, nodeup_time, [Newcomer, make_ref()]) || {P, _} <- Nodes],
    Listed = [peer:call(P, caravan_bench_node, listed_time, [Newcomer, make_ref()])
              || {P, _} <- Nodes],
    Ms = fun(T) -> (T - T0) div 1000 end,
    #{joined => Ms(lists:max(Ups)), first_up => Ms(lists:min(Ups)),
      listed => Ms(lists:max(Listed)), cpu_ms => receive {Cpu, CpuMs} -> CpuMs end}.

report(D, S) ->
    Row = fun(_Label, _Unit, none, none) ->
                  ok; % not in this build (its line says so below)
             (Label, Unit, A, B) ->
                  io:format("~-48s ~8b ~s ~10b ~s ~8.2fx~n",
                            [Label, A, Unit, B, Unit, B / max(1, A)]),
                  row(Label ++ ", default flags", A, Unit, lower),
                  row(Label ++ ", shared-host flags", B, Unit, lower)
          end,
    io:format("~-48s ~11s ~13s ~9s~n", ["", "default", "shared-host", "ratio"]),
    Row(io_lib:format("cold start to full mesh, DNS (~b ms poll)", [?POLL_MS]), "ms",
        maps:get(dns_mesh, D), maps:get(dns_mesh, S)),
    Row(io_lib:format("cold start to full mesh, DNS A (~b ms poll)", [?POLL_MS]), "ms",
        maps:get(dns_a_mesh, D), maps:get(dns_a_mesh, S)),
    get(dns_a) orelse io:format("(this build has no `type => a' DNS sources: no DNS A row)~n"),
    Row("cold start to full mesh, Consul (blocking)", "ms",
        maps:get(consul_mesh, D), maps:get(consul_mesh, S)),
    Stat = fun(Label, K, P) -> Row(Label, "ms", pct(maps:get(K, D), P), pct(maps:get(K, S), P)) end,
    Stat("join p50: record added -> all connected", joined, 50),
    Stat("join p99", joined, 99),
    Stat("  stage p50: every node has the new list", listed, 50),
    Stat("  stage p50: first connection up", first_up, 50),
    Stat(io_lib:format("CPU per join, whole machine (~b ms), p50", [?CPU_WINDOW_MS]), cpu_ms, 50),
    io:format("goals: full mesh <= 5000 ms after the last boot; join p50 <= 100 ms~n").

%% With CARAVAN_BENCH_ROWS set, a machine-readable line beside the human
%% one, for bench/compare.escript: ROW, bench, row, value, unit, which way
%% is better (lower or higher).
row(Name, Value, Unit, Better) ->
    os:getenv("CARAVAN_BENCH_ROWS") =:= false orelse
        io:format("ROW\tcluster\t~ts\t~w\t~s\t~s~n", [string:trim(Name), Value, Unit, Better]).

start_node(#{ebin := Ebin, port := Port, args := Args}, Ip) ->
    {ok, P, N} = peer:start(#{name => "app-" ++ integer_to_list(Port), host => Ip,
                              longnames => true, connection => standard_io, wait_boot => 60000,
                              args => ["-start_epmd", "false", "-epmd_module", "caravan_epmd",
                                       "-kernel", "inet_dist_use_interface", tuple(Ip),
                                       %% Stopping 32 nodes one by one makes
                                       %% global warn on each; failures show
                                       %% here as timeouts.
                                       "-kernel", "logger_level", "error",
                                       "-pa", Ebin, "-setcookie", "caravan-bench"] ++ Args}),
    {ok, _} = peer:call(P, application, ensure_all_started, [caravan], 30000),
    {module, _} = peer:call(P, code, load_binary, [caravan_bench_node, "caravan_bench_node.erl",
                                                   get(node_module)]),
    _ = peer:call(P, caravan_bench_node, start_recorder, []),
    {P, N}.

stop_nodes(Nodes) ->
    [peer:stop(P) || {P, _} <- Nodes],
    ok.

start_cluster(P, Source) ->
    {ok, _} = peer:call(P, caravan, start_cluster,
                        [app, #{sources => [Source], poll_interval => ?POLL_MS,
                                retry_min => 200}], 30000).

wait_mesh(Nodes, Timeout) ->
    Deadline = now_ms() + Timeout,
    N = length(Nodes) - 1,
    wait(fun() -> lists:all(fun({P, _}) -> length(peer:call(P, erlang, nodes, [])) =:= N end,
                            Nodes) end, Deadline, 5).

%% Asking 32 nodes what they see takes CPU from the nodes being measured, so
%% a join is left alone for its first 300 ms and then checked every 100 ms;
%% its latency comes from the nodes' own notes, not from this loop.
wait_all_see(Nodes, Node, Want, Timeout) ->
    Deadline = now_ms() + Timeout,
    timer:sleep(300),
    wait(fun() -> lists:all(fun({P, _}) -> lists:member(Node, peer:call(P, erlang, nodes, []))
                                               =:= Want end, Nodes) end, Deadline, 100).

wait(Fun, Deadline, Every) ->
    case Fun() of
        true -> ok;
        false ->
            case now_ms() > Deadline of
                true -> error(timeout);
                false -> timer:sleep(Every), wait(Fun, Deadline, Every)
            end
    end.

%% The machine's busy CPU time (all cores, every process) over the next
%% WindowMs, delivered as {Ref, Ms} to the caller.
cpu_after(WindowMs) ->
    Self = self(),
    Ref = make_ref(),
    Before = cpu_jiffies(),
    spawn_link(fun() ->
                       timer:sleep(WindowMs),
                       {Busy1, _} = cpu_jiffies(),
                       Self ! {Ref, (Busy1 - element(1, Before)) * 10}   % USER_HZ = 100
               end),
    Ref.

%% /proc/stat's first line: user nice system idle iowait irq softirq steal.
cpu_jiffies() ->
    {ok, Stat} = file:read_file("/proc/stat"),
    [<<"cpu">> | Fields] = binary:split(hd(binary:split(Stat, <<"\n">>)), <<" ">>,
                                        [global, trim_all]),
    [User, Nice, System, Idle, IoWait, Irq, SoftIrq, Steal | _] =
        [binary_to_integer(F) || F <- Fields],
    {User + Nice + System + Irq + SoftIrq + Steal, Idle + IoWait}.

pmap(F, L) ->
    Self = self(),
    NodeBin = get(node_module),
    Pids = [spawn_link(fun() -> put(node_module, NodeBin), Self ! {self(), F(X)} end)
            || X <- L],
    %% A worker that crashed is an error here, not a wait without end
    %% (scale_bench traps exits, so its crash arrives as a message).
    [receive
         {P, R} -> R;
         {'EXIT', P, Why} when Why =/= normal -> error({pmap_worker, Why})
     end || P <- Pids].

free_port() ->
    {ok, S} = gen_tcp:listen(0, [{ip, {127, 0, 1, 1}}]),
    {ok, P} = inet:port(S),
    gen_tcp:close(S),
    P.

load(Dir, Mod) ->
    %% The test servers live in test/support/.
    {ok, Mod, Bin} = compile:file(filename:join([Dir, "support", atom_to_list(Mod) ++ ".erl"]),
                                  [binary]),
    {module, Mod} = code:load_binary(Mod, atom_to_list(Mod) ++ ".erl", Bin).

label(Ip) -> "h-" ++ lists:map(fun($.) -> $-; (C) -> C end, Ip).
tuple(Ip) -> "{" ++ lists:map(fun($.) -> $,; (C) -> C end, Ip) ++ "}".
now_ms() -> erlang:monotonic_time(millisecond).

pct(Samples, P) ->
    Sorted = lists:sort(Samples),
    lists:nth(max(1, min(length(Sorted), round(P / 100 * length(Sorted)))), Sorted).

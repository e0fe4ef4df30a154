#!/usr/bin/env escript
%%! -noshell +sbwt none +sbwtdcpu none +sbwtdio none
%%% Scaling benchmark (`make bench-scale'): N = 32, 64 and 100 nodes on this
%%% machine (CARAVAN_SCALE_NODES="32 64 100" to change), all named
%%% app-PORT@127.0.3.x, no epmd, every node with cluster_bench's shared-host
%%% flags (one scheduler, no busy waiting). For each N:
%%%   - cold start to full mesh from DNS (BIND, polled every 1 s) and from
%%%     Consul watches (the test server), timed from the moment the clusters
%%%     start on nodes already booted;
%%%   - join of node N+1 (a record added -> every node connected) p50/p99,
%%%     and leave (the record removed -> every node disconnected) p50;
%%%   - caravan's own cost per node: the C programs' RSS, the memory of the
%%%     Erlang processes caravan owns, connections; and idle CPU per node
%%%     (the whole VM and its C programs) over a quiet window;
%%%   - what one membership change costs the Consul test server with
%%%     consistency default, stale, and stale + cached (caravan's default):
%%%     requests, response bytes, and what the servers behind a caching
%%%     agent would serve (the test server models one agent for the host).
%%% Then the exponent of a power fit y = a*N^k over the N measured.
%%% CARAVAN_SCALE_ARGS adds flags to every node (see extra_args/0).
%%%
%%% The node helpers (start_node, start_cluster, wait_mesh, pmap, cpu
%%% sampling...) are cluster_bench.escript's own, loaded from that file as
%%% a module: one copy of them.
-mode(compile).

-define(JOINS, 10).
-define(CHANGES, 6).        % membership changes per Consul mode (leave, join, ...)
-define(IDLE_WINDOW_MS, 10000).
-define(SHARED_HOST_FLAGS, ["+S", "1", "+SDcpu", "1", "+SDio", "1",
                            "+sbwt", "none", "+sbwtdcpu", "none", "+sbwtdio", "none"]).
-define(MODES, [{default, #{consistency => default, cached => false}},
                {stale, #{consistency => stale, cached => false}},
                {cached, #{consistency => stale, cached => true}}]).

main([Ebin, TestDir]) ->
    process_flag(trap_exit, true),
    true = code:add_patha(Ebin),
    BenchDir = filename:dirname(escript:script_name()),
    ok = load_cluster_bench(filename:join(BenchDir, "cluster_bench.escript")),
    {ok, caravan_bench_node, NodeBin} =
        compile:file(filename:join(BenchDir, "caravan_bench_node.erl"), [binary]),
    {ok, caravan_scale_node, ScaleBin} =
        compile:file(filename:join(BenchDir, "caravan_scale_node.erl"), [binary]),
    put(node_module, NodeBin),
    %% cluster_bench:pmap/2 hands its workers node_module only.
    persistent_term:put({?MODULE, scale_module}, ScaleBin),
    [cluster_bench:load(TestDir, M) || M <- [caravan_test_bind, caravan_test_json,
                                             caravan_test_http, caravan_test_faults,
                                             caravan_test_catalog, caravan_test_consul_agent,
                                             caravan_test_consul]],
    {ok, _} = application:ensure_all_started(caravan),
    Ns = [list_to_integer(N) || N <- string:lexemes(os:getenv("CARAVAN_SCALE_NODES",
                                                               "32 64 100"), " ")],
    io:format("scale benchmark: N = ~w, ~b cores, ~b MiB RAM, ~b joins per N~n"
              "shared-host flags: ~s~n"
              "load average at start: ~s~n",
              [Ns, erlang:system_info(logical_processors_available), mem_mib(), ?JOINS,
               lists:join(" ", ?SHARED_HOST_FLAGS ++ extra_args()), loadavg()]),
    Results = [{N, run(Ebin, N)} || N <- Ns],
    report(Results).

%% CARAVAN_SCALE_ARGS: more flags for every node, to see what a choice
%% costs, e.g. "-connect_all false" (global no longer meshes the nodes
%% itself: the cost of its sync shows as the difference).
extra_args() -> string:lexemes(os:getenv("CARAVAN_SCALE_ARGS", ""), " ").

%% cluster_bench.escript as a module `cluster_bench' with every function
%% exported: its header lines (#!, %%!) dropped, its forms kept.
load_cluster_bench(File) ->
    {ok, Text} = file:read_file(File),
    Lines = binary:split(Text, <<"\n">>, [global]),
    Body = [L || L <- Lines, not is_header(L)],
    Tmp = filename:join(string:trim(os:cmd("mktemp -d")), "cluster_bench.erl"),
    ok = file:write_file(Tmp, ["-module(cluster_bench).\n-compile([export_all, nowarn_export_all]).\n"
                               | lists:join(<<"\n">>, Body)]),
    {ok, cluster_bench, Bin} = compile:file(Tmp, [binary, return_errors]),
    os:cmd("rm -rf " ++ filename:dirname(Tmp)),
    {module, cluster_bench} = code:load_binary(cluster_bench, Tmp, Bin),
    ok.

is_header(<<"#!", _/binary>>) -> true;
is_header(<<"%%!", _/binary>>) -> true;
is_header(<<"-mode(", _/binary>>) -> true;
is_header(_) -> false.

%% One N: boot N+1 nodes (N members and the newcomer), then each measure.
run(Ebin, N) ->
    Port = cluster_bench:free_port(),
    Ips = ["127.0.3." ++ integer_to_list(I) || I <- lists:seq(1, N + 1)],
    Members = lists:sublist(Ips, N),
    NewIp = lists:last(Ips),
    Dir = string:trim(os:cmd("mktemp -d")),
    Records = lists:append([["app.service SRV 1 1 " ++ integer_to_list(Port) ++ " "
                             ++ cluster_bench:label(Ip) ++ ".node.dc1",
                             cluster_bench:label(Ip) ++ ".node.dc1 A " ++ Ip] || Ip <- Members]),
    Bind = caravan_test_bind:start(Dir, #{records => Records}),
    Consul = caravan_test_consul:start(#{}),
    Catalog = caravan_test_catalog:catalog(Consul),
    [ok = register(Catalog, Ip, Port) || Ip <- Members],
    Env = #{ebin => Ebin, port => Port, args => ?SHARED_HOST_FLAGS ++ extra_args()},
    Dns = {dns, #{query => "app.service.consul", basename => "app",
                  servers => [caravan_test_bind:server(Bind)]}},
    ConsulSource = fun(Mode) ->
                           {consul, Mode#{service => "app", basename => "app", wait => 30000,
                                          url => caravan_test_catalog:url(Consul)}}
                   end,
    io:format("~nN = ~b: booting ~b nodes...~n", [N, N + 1]),
    T0 = now_ms(),
    Nodes = try cluster_bench:pmap(fun(Ip) -> start_node(Env, Ip) end, Ips)
            catch C:R ->
                    io:format("N = ~b: booting stopped: ~p:~p (~b MiB free)~n",
                              [N, C, R, mem_free_mib()]),
                    caravan_test_catalog:stop_server(Consul),
                    caravan_test_bind:stop(Bind),
                    erlang:raise(C, R, [])
            end,
    {Olds, [{PN, Newcomer}]} = lists:split(N, Nodes),
    io:format("  booted in ~b ms; ~b MiB free~n", [now_ms() - T0, mem_free_mib()]),
    try
        %% The mesh alone, no discovery: every node dials every other
        %% (caravan_epmd still derives the ports), to see what of a cold
        %% start is Erlang distribution's and global's, and what is caravan's.
        Names = [Name || {_, Name} <- Olds],
        Direct = cold_start(Olds, fun(P) -> peer:call(P, caravan_scale_node, dial_all, [Names])
                                  end),
        io:format("  cold start, direct dials: ~p~n", [Direct]),
        disconnect_all(Olds),
        Dns1 = cold_start(Olds, fun(P) -> cluster_bench:start_cluster(P, Dns) end),
        io:format("  cold start, DNS: ~p~n", [Dns1]),
        io:format("  the nodes' last source errors: ~p~n", [last_errors(Olds)]),
        stop_clusters(Olds),
        disconnect_all(Olds),
        Consul1 = cold_start(Olds, fun(P) -> cluster_bench:start_cluster(P, ConsulSource(#{}))
                                   end),
        io:format("  cold start, Consul (default options): ~p~n", [Consul1]),
        Cost = costs(Olds),
        io:format("  cost per node: ~p~n", [Cost]),
        Idle = idle_cpu(Olds),
        io:format("  idle CPU per node: ~p~n", [Idle]),
        cluster_bench:start_cluster(PN, ConsulSource(#{})),
        [peer:call(P, caravan_bench_node, start_stage_tracer, [app]) || {P, _} <- Olds],
        Joins = joins(Olds, Newcomer, Catalog, NewIp, Port),
        io:format("  joins: ~p~n", [Joins]),
        Modes = [{Name, mode_cost(Olds, {PN, Newcomer}, Catalog, Consul, NewIp, Port,
                                  ConsulSource(Mode))} || {Name, Mode} <- ?MODES],
        io:format("  Consul per change: ~p~n", [Modes]),
        maps:merge(#{direct_mesh => Direct, dns_mesh => Dns1, consul_mesh => Consul1, modes => Modes, idle => Idle},
                   maps:merge(Cost, Joins))
    after
        cluster_bench:stop_nodes(Nodes),
        caravan_test_catalog:stop_server(Consul),
        caravan_test_bind:stop(Bind),
        os:cmd("rm -rf " ++ Dir)
    end.

start_node(Env, Ip) ->
    {P, Node} = cluster_bench:start_node(Env, Ip),
    {module, _} = peer:call(P, code, load_binary, [caravan_scale_node, "caravan_scale_node.erl",
                                                   persistent_term:get({?MODULE, scale_module})]),
    _ = peer:call(P, caravan_scale_node, start_recorder, []),
    %% Every module of kernel, stdlib and caravan loaded now, as a release
    %% booted in embedded mode loads them (its boot script's primLoad): in
    %% interactive mode the first cluster loads them on demand, and a cold
    %% start at N = 32 measured erl_prim_loader and code_server as the
    %% busiest processes of a node.
    [begin
         {ok, Mods} = peer:call(P, application, get_key, [App, modules]),
         %% 65 VMs booting at once on 2 cores: peer:call's 5 s default is short.
         ok = peer:call(P, code, ensure_modules_loaded, [Mods], 120000)
     end || App <- [kernel, stdlib, caravan]],
    {P, Node}.

register(Catalog, Ip, Port) ->
    Id = list_to_binary(Ip),
    caravan_test_catalog:register(Catalog, <<"app">>, #{id => Id, address => Id, port => Port}).

%% From the first cluster started (Start on every node at once) to the
%% last nodeup that completed the mesh, as the nodes noted it: the mesh is
%% checked every 250 ms only (cluster_bench's 5 ms poll of every node would
%% take, at N = 100, the CPU the nodes need to form it), and the figure is
%% the nodes' own clock. With it, the CPU the machine spent up to that last
%% nodeup (everything on it, this script too; sampled every 100 ms), in
%% core-ms: on C cores a cold start cannot take less than its CPU / C; and
%% the nodes' VMs' and C programs' CPU up to when the mesh was seen; and
%% the dials (connect_node calls) and nodedowns on the way.
cold_start(Nodes, Start) ->
    settle(),
    Sampler = spawn_link(fun() -> sample_cpu([]) end),
    Ticks0 = [peer:call(P, caravan_scale_node, cpu_ticks, []) || {P, _} <- Nodes],
    Lookups0 = [lookup_counts(P) || {P, _} <- Nodes],
    [ok = peer:call(P, caravan_scale_node, count_dials, []) || {P, _} <- Nodes],
    {P1, _} = hd(Nodes),
    Reds0 = peer:call(P1, caravan_scale_node, reductions, []),
    T0 = erlang:system_time(microsecond),
    {Busy0, _} = cluster_bench:cpu_jiffies(),
    cluster_bench:pmap(fun({P, _}) -> Start(P) end, Nodes),
    N = length(Nodes) - 1,
    cluster_bench:wait(fun() -> lists:all(fun({P, _}) -> length(peer:call(P, erlang, nodes, []))
                                                              =:= N end, Nodes) end,
                       now_ms() + 300000, 250),
    Ticks1 = [peer:call(P, caravan_scale_node, cpu_ticks, []) || {P, _} <- Nodes],
    Lookups1 = [lookup_counts(P) || {P, _} <- Nodes],
    Ups = [peer:call(P, caravan_scale_node, last_up, [make_ref()]) || {P, _} <- Nodes],
    Counts = [peer:call(P, caravan_scale_node, counts, []) || {P, _} <- Nodes],
    io:format("  the busiest processes of one node (reductions): ~p~n",
              [peer:call(P1, caravan_scale_node, top_reductions, [Reds0, 8])]),
    Last = lists:max(Ups),
    Sampler ! {samples, self()},
    Samples = receive {Sampler, S} -> S end,
    %% The first sample at or after the last nodeup (they are newest first).
    BusyAt = case [B || {T, B} <- Samples, T >= Last] of
                 [] -> element(2, hd(Samples));
                 After -> lists:last(After)
             end,
    Sum = fun(F) -> 10 * lists:sum([F(A, B) || {A, B} <- lists:zip(Ticks0, Ticks1)]) end,
    #{ms => (Last - T0) div 1000,
      cpu_ms => 10 * (BusyAt - Busy0),   % USER_HZ = 100
      vm_cpu_ms => Sum(fun({V0, _}, {V1, _}) -> V1 - V0 end),
      c_cpu_ms => Sum(fun({_, C0}, {_, C1}) -> C1 - C0 end),
      dials => lists:sum([D || #{dials := D} <- Counts]),
      downs => lists:sum([D || #{downs := D} <- Counts]),
      program_requests => lists:sum([R1 - R0 || {{R0, _}, {R1, _}} <- lists:zip(Lookups0, Lookups1)]),
      program_errors => lists:sum([E1 - E0 || {{_, E0}, {_, E1}} <- lists:zip(Lookups0, Lookups1)])}.

%% How many nodes' cluster last saw each error from its source (the
%% reason's first element), and none.
last_errors(Nodes) ->
    Errors = [case peer:call(P, caravan_cluster, status, [app]) of
                  #{sources := [#{last_error := {Reason, _}} | _]} -> Reason;
                  #{sources := [#{last_error := undefined} | _]} -> none;
                  #{sources := [#{last_error := E} | _]} -> E;
                  _ -> none
              end || {P, _} <- Nodes],
    lists:foldl(fun(E, Acc) -> maps:update_with(E, fun(C) -> C + 1 end, 1, Acc) end,
                #{}, Errors).

%% The lookup program's requests and error replies so far (caravan:info/0):
%% a lookup that failed during a cold start delays that node's dials to
%% the next poll. The requests count the owner's liveness pings and these
%% info calls too: the direct dials, which look nothing up, show how many.
lookup_counts(P) ->
    case peer:call(P, caravan, info, []) of
        #{lookup := {ok, #{requests := R, errors := E}}} -> {R, E};
        _ -> {0, 0}
    end.

sample_cpu(Acc) ->
    receive
        {samples, From} -> From ! {self(), Acc}
    after 100 ->
        {Busy, _} = cluster_bench:cpu_jiffies(),
        sample_cpu([{erlang:system_time(microsecond), Busy} | Acc])
    end.

%% Until the machine is quiet (under a quarter of its cores busy over one
%% second; 60 s at most), so that a cold start is not charged with the
%% boot of 101 VMs or the teardown of the last step: their CPU would count
%% in the figure of the step after.
settle() ->
    Cores = erlang:system_info(logical_processors_available),
    T0 = now_ms(),
    settle(Cores, T0 + 60000),
    io:format("  (quiet after ~b ms)~n", [now_ms() - T0]).

settle(Cores, Deadline) ->
    {Busy0, _} = cluster_bench:cpu_jiffies(),
    timer:sleep(1000),
    {Busy1, _} = cluster_bench:cpu_jiffies(),
    %% jiffies are 10 ms: a second of one core is 100.
    case (Busy1 - Busy0) < 25 * Cores orelse now_ms() > Deadline of
        true -> ok;
        false -> settle(Cores, Deadline)
    end.

stop_clusters(Nodes) ->
    %% A stop leaves (tells the others, waits up to 500 ms for them): on
    %% 100 VMs sharing 2 cores that outruns peer:call's 5 s default.
    [ok = peer:call(P, caravan, stop_cluster, [app], 60000) || {P, _} <- Nodes],
    ok.

%% Between the two cold starts: every connection closed, and no node
%% reconnecting (no cluster runs; global only connects nodes it is told of).
disconnect_all(Nodes) ->
    Deadline = now_ms() + 60000,
    cluster_bench:wait(fun() ->
                               [peer:call(P, erlang, disconnect_node, [M])
                                || {P, _} <- Nodes, M <- peer:call(P, erlang, nodes, [])],
                               lists:all(fun({P, _}) -> peer:call(P, erlang, nodes, []) =:= [] end,
                                         Nodes)
                       end, Deadline, 200).

%% Medians over the nodes: C RSS (both programs, KiB), Erlang bytes.
costs(Nodes) ->
    Costs = [peer:call(P, caravan_scale_node, cost, []) || {P, _} <- Nodes],
    Med = fun(F) -> pct([F(C) || C <- Costs], 50) end,
    #{c_rss_kib => Med(fun(#{c_rss_kib := L}) -> lists:sum(L) end),
      c_rss_each_kib => Med(fun(#{c_rss_kib := L}) -> lists:max(L) end),
      c_pss_kib => Med(fun(#{c_pss_kib := L}) -> lists:sum(L) end),
      c_private_kib => Med(fun(#{c_private_kib := L}) -> lists:sum(L) end),
      erl_kib => Med(fun(#{erl_bytes := B}) -> B div 1024 end),
      erl_processes => Med(fun(#{erl_processes := X}) -> X end),
      connections => Med(fun(#{connections := X}) -> X end),
      vm_kib => Med(fun(#{vm_bytes := B}) -> B div 1024 end)}.

%% CPU per node over a quiet window: % of one core, median over the nodes,
%% for the whole VM and for its two C programs.
idle_cpu(Nodes) ->
    Before = [peer:call(P, caravan_scale_node, cpu_ticks, []) || {P, _} <- Nodes],
    timer:sleep(?IDLE_WINDOW_MS),
    After = [peer:call(P, caravan_scale_node, cpu_ticks, []) || {P, _} <- Nodes],
    Pct = fun(Ticks) -> Ticks * 10 * 100 / ?IDLE_WINDOW_MS end,  % USER_HZ = 100
    #{vm_pct => pct([Pct(V1 - V0) || {{V0, _}, {V1, _}} <- lists:zip(Before, After)], 50),
      c_pct => pct([Pct(C1 - C0) || {{_, C0}, {_, C1}} <- lists:zip(Before, After)], 50)}.

%% Node N+1 joins (its record added) and leaves (removed), ?JOINS times:
%% ms until every node is connected to it, and until every node let go.
joins(Nodes, Newcomer, Catalog, Ip, Port) ->
    Samples = [begin
                   T0 = erlang:system_time(microsecond),
                   ok = register(Catalog, Ip, Port),
                   cluster_bench:wait_all_see(Nodes, Newcomer, true, 60000),
                   Up = [peer:call(P, caravan_bench_node, nodeup_time, [Newcomer, make_ref()])
                         || {P, _} <- Nodes],
                   Listed = [peer:call(P, caravan_bench_node, listed_time, [Newcomer, make_ref()])
                             || {P, _} <- Nodes],
                   timer:sleep(200),
                   T1 = erlang:system_time(microsecond),
                   ok = caravan_test_catalog:deregister(Catalog, <<"app">>, list_to_binary(Ip)),
                   cluster_bench:wait_all_see(Nodes, Newcomer, false, 60000),
                   Down = [peer:call(P, caravan_scale_node, down_time, [Newcomer, make_ref()])
                           || {P, _} <- Nodes],
                   [begin
                        peer:call(P, caravan_bench_node, forget_stages, [Newcomer]),
                        peer:call(P, caravan_scale_node, forget, [Newcomer])
                    end || {P, _} <- Nodes],
                   timer:sleep(200),
                   Ms = fun(T, Since) -> (T - Since) div 1000 end,
                   #{join => Ms(lists:max(Up), T0), leave => Ms(lists:max(Down), T1),
                     listed => Ms(lists:max([T0 | [T || T <- Listed, is_integer(T)]]), T0),
                     first_up => Ms(lists:min(Up), T0)}
               end || _ <- lists:seq(1, ?JOINS)],
    Of = fun(K) -> [maps:get(K, S) || S <- Samples] end,
    #{join_p50 => pct(Of(join), 50), join_p99 => pct(Of(join), 99),
      leave_p50 => pct(Of(leave), 50), listed_p50 => pct(Of(listed), 50),
      first_up_p50 => pct(Of(first_up), 50),
      join_samples => Of(join), leave_samples => Of(leave)}.

%% Every node's cluster restarted on Source (the mesh stays), then, after
%% one change not counted, ?CHANGES membership changes (node N+1 out, in,
%% ...), each waited for on every node: what the test server served per
%% change; then node N+1 leaves again, not counted.
mode_cost(Nodes, {_, Newcomer} = New, Catalog, Consul, Ip, Port, Source) ->
    %% The newcomer's cluster too: it watches even while not listed.
    stop_clusters([New | Nodes]),
    cluster_bench:pmap(fun({P, _}) -> cluster_bench:start_cluster(P, Source) end, [New | Nodes]),
    cluster_bench:wait_mesh(Nodes, 120000),
    %% A change not counted: the queries of the clusters just stopped stay
    %% in the server until their wait ends, and this answers them.
    ok = register(Catalog, Ip, Port),
    cluster_bench:wait_all_see(Nodes, Newcomer, true, 60000),
    timer:sleep(2000),   % every watch blocked on the current index
    ok = caravan_test_consul:reset_stats(Consul),
    [case I rem 2 of
         0 -> ok = register(Catalog, Ip, Port),
              cluster_bench:wait_all_see(Nodes, Newcomer, true, 60000);
         1 -> ok = caravan_test_catalog:deregister(Catalog, <<"app">>, list_to_binary(Ip)),
              cluster_bench:wait_all_see(Nodes, Newcomer, false, 60000)
     end || I <- lists:seq(1, ?CHANGES)],
    timer:sleep(1000),
    S = caravan_test_consul:stats(Consul),
    ok = caravan_test_catalog:deregister(Catalog, <<"app">>, list_to_binary(Ip)),
    cluster_bench:wait_all_see(Nodes, Newcomer, false, 60000),
    maps:map(fun(_, V) -> V div ?CHANGES end, S).

report(Results) ->
    Ns = [N || {N, _} <- Results],
    io:format("~n~-54s", ["N"]),
    [io:format("~10b", [N]) || N <- Ns],
    io:format("~10s~n", ["exponent"]),
    Row = fun(Label, Get) ->
                  Ys = [Get(R) || {_, R} <- Results],
                  io:format("~-54s", [Label]),
                  [io:format("~10s", [fmt(Y)]) || Y <- Ys],
                  io:format("~10s~n", [fmt(fit(Ns, Ys))])
          end,
    [begin
         Get = fun(R, K) -> maps:get(K, maps:get(Key, R)) end,
         Row(io_lib:format("cold start to full mesh, ~s, ms", [What]), fun(R) -> Get(R, ms) end),
         Row("  CPU to the last nodeup, machine, core-ms", fun(R) -> Get(R, cpu_ms) end),
         Row("  CPU to the mesh seen, nodes' VMs, core-ms", fun(R) -> Get(R, vm_cpu_ms) end),
         Row("  CPU to the mesh seen, C programs, core-ms",
             fun(R) -> Get(R, c_cpu_ms) end),
         Row("  connect_node calls, all nodes", fun(R) -> Get(R, dials) end),
         Row("  nodedowns on the way, all nodes", fun(R) -> Get(R, downs) end)
     end || {Key, What} <- [{direct_mesh, "direct dials"},
                            {dns_mesh, "DNS (1 s poll)"}, {consul_mesh, "Consul"}]],
    Row("join of node N+1, p50, ms", fun(R) -> maps:get(join_p50, R) end),
    Row("join of node N+1, p99 (max of 10), ms", fun(R) -> maps:get(join_p99, R) end),
    Row("  stage p50: every node has the new list, ms", fun(R) -> maps:get(listed_p50, R) end),
    Row("  stage p50: first connection up, ms", fun(R) -> maps:get(first_up_p50, R) end),
    Row("leave, p50, ms", fun(R) -> maps:get(leave_p50, R) end),
    Row("C programs' RSS per node (both), KiB", fun(R) -> maps:get(c_rss_kib, R) end),
    Row("  the larger of the two, KiB", fun(R) -> maps:get(c_rss_each_kib, R) end),
    Row("  PSS (shared pages split among sharers), KiB", fun(R) -> maps:get(c_pss_kib, R) end),
    Row("  private (only theirs), KiB", fun(R) -> maps:get(c_private_kib, R) end),
    Row("caravan's Erlang processes + ETS, KiB", fun(R) -> maps:get(erl_kib, R) end),
    Row("  processes", fun(R) -> maps:get(erl_processes, R) end),
    Row("whole VM memory per node, KiB", fun(R) -> maps:get(vm_kib, R) end),
    Row("distribution connections per node", fun(R) -> maps:get(connections, R) end),
    Row("idle CPU per node, whole VM, % of a core", fun(R) -> maps:get(vm_pct, maps:get(idle, R)) end),
    Row("idle CPU per node, C programs, % of a core",
        fun(R) -> maps:get(c_pct, maps:get(idle, R)) end),
    [begin
         Get = fun(R, K) -> maps:get(K, proplists:get_value(Mode, maps:get(modes, R))) end,
         Row(io_lib:format("Consul ~s: requests per change", [Mode]), fun(R) -> Get(R, requests) end),
         Row(io_lib:format("Consul ~s: bytes per change", [Mode]), fun(R) -> Get(R, bytes) end),
         Row(io_lib:format("Consul ~s: server requests per change", [Mode]),
             fun(R) -> Get(R, upstream_requests) end),
         Row(io_lib:format("Consul ~s: server bytes per change", [Mode]),
             fun(R) -> Get(R, upstream_bytes) end)
     end || {Mode, _} <- ?MODES],
    io:format("load average at end: ~s~n", [loadavg()]).

%% Least squares on logs: the k of y = a*N^k (none with a zero).
fit(Ns, Ys) ->
    case lists:all(fun(Y) -> is_number(Y) andalso Y > 0 end, Ys) andalso length(Ns) > 1 of
        false -> "-";
        true ->
            Xs = [math:log(N) || N <- Ns],
            Ls = [math:log(Y) || Y <- Ys],
            Mx = lists:sum(Xs) / length(Xs),
            My = lists:sum(Ls) / length(Ls),
            Sxy = lists:sum([(X - Mx) * (L - My) || {X, L} <- lists:zip(Xs, Ls)]),
            Sxx = lists:sum([(X - Mx) * (X - Mx) || X <- Xs]),
            Sxy / Sxx
    end.

fmt(X) when is_integer(X) -> integer_to_list(X);
fmt(X) when is_float(X) -> float_to_list(X, [{decimals, 2}]);
fmt(X) -> X.

pct(Samples, P) -> cluster_bench:pct(Samples, P).
now_ms() -> erlang:monotonic_time(millisecond).

mem_mib() ->
    {match, [Kib]} = re:run(element(2, file:read_file("/proc/meminfo")),
                            <<"MemTotal:\\s+([0-9]+)">>, [{capture, all_but_first, binary}]),
    binary_to_integer(Kib) div 1024.

mem_free_mib() ->
    {match, [Kib]} = re:run(element(2, file:read_file("/proc/meminfo")),
                            <<"MemAvailable:\\s+([0-9]+)">>, [{capture, all_but_first, binary}]),
    binary_to_integer(Kib) div 1024.

loadavg() ->
    string:trim(element(2, file:read_file("/proc/loadavg"))).

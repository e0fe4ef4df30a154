#!/usr/bin/env escript
%%! -noshell
%%% Cluster benchmark: 32 nodes on this machine, all named app-PORT@127.0.1.x
%%% (one port, one loopback address each), no epmd.
%%%   - cold start to full mesh (every node sees 31 others), measured from
%%%     the moment the last node booted and started its cluster: from DNS
%%%     (BIND, polled every 1 s) and from the Consul test server (watched);
%%%   - join latency with blocking queries: a record added -> every node
%%%     connected to the newcomer, p50/p99 over repeated joins.
%%% CARAVAN_BENCH_NODE_ARGS adds VM flags to every node (e.g.
%%% "-connect_all false" to see what global's syncing costs).
-mode(compile).

%% CARAVAN_BENCH_NODES overrides the count (to see how join latency scales).
-define(NODES, list_to_integer(os:getenv("CARAVAN_BENCH_NODES", "32"))).
-define(JOINS, 20).
-define(POLL_MS, 1000).

main([Ebin, TestDir]) ->
    process_flag(trap_exit, true),
    true = code:add_patha(Ebin),
    BenchDir = filename:dirname(escript:script_name()),
    {ok, caravan_bench_node, NodeBin} =
        compile:file(filename:join(BenchDir, "caravan_bench_node.erl"), [binary]),
    put(node_module, NodeBin),
    [load(TestDir, M) || M <- [caravan_test_bind, caravan_test_json, caravan_test_http,
                               caravan_test_faults, caravan_test_catalog, caravan_test_consul]],
    {ok, _} = application:ensure_all_started(caravan),
    Port = free_port(),
    Ips = ["127.0.1." ++ integer_to_list(I) || I <- lists:seq(1, ?NODES + 1)],
    Dir = string:trim(os:cmd("mktemp -d")),
    Records = lists:append([["app.service SRV 1 1 " ++ integer_to_list(Port) ++ " " ++ label(Ip)
                             ++ ".node.dc1", label(Ip) ++ ".node.dc1 A " ++ Ip]
                            || Ip <- lists:sublist(Ips, ?NODES)]),
    Bind = caravan_test_bind:start(Dir, #{records => Records}),
    Consul = caravan_test_consul:start(#{}),
    Catalog = caravan_test_consul:catalog(Consul),
    [ok = caravan_test_catalog:register(Catalog, <<"app">>, #{id => list_to_binary(Ip),
                                                             address => list_to_binary(Ip),
                                                             port => Port})
     || Ip <- lists:sublist(Ips, ?NODES)],
    io:format("cluster benchmark: ~b nodes app-~b@127.0.1.x~n~n", [?NODES, Port]),
    try
        Dns = {dns, #{query => "app.service.consul", basename => "app",
                      servers => [caravan_test_bind:server(Bind)]}},
        Http = {consul, #{service => "app", basename => "app",
                          url => caravan_test_consul:url(Consul), wait => 30000}},
        DnsMs = cold_start(Ebin, Port, lists:sublist(Ips, ?NODES), Dns),
        io:format("cold start to full mesh, DNS (poll ~b ms):      ~6b ms~n", [?POLL_MS, DnsMs]),
        {ConsulMs, Nodes} = cold_start_keep(Ebin, Port, lists:sublist(Ips, ?NODES), Http),
        io:format("cold start to full mesh, Consul (blocking):   ~6b ms~n", [ConsulMs]),
        joins(Ebin, Port, lists:last(Ips), Http, Catalog, Nodes),
        [peer:stop(P) || {P, _} <- Nodes]
    after
        caravan_test_consul:stop(Consul),
        caravan_test_bind:stop(Bind),
        os:cmd("rm -rf " ++ Dir)
    end;
main(_) ->
    io:format(standard_error, "usage: cluster_bench.escript EBIN TEST_DIR~n", []),
    halt(2).

cold_start(Ebin, Port, Ips, Source) ->
    {Ms, Nodes} = cold_start_keep(Ebin, Port, Ips, Source),
    [peer:stop(P) || {P, _} <- Nodes],
    Ms.

%% Boots every node first (booting 32 VMs on 2 cores takes a while and is
%% not caravan's doing), then starts all clusters and times the mesh.
cold_start_keep(Ebin, Port, Ips, Source) ->
    Nodes = pmap(fun(Ip) -> start_node(Ebin, Port, Ip) end, Ips),
    T0 = now_ms(),
    pmap(fun({P, _}) -> start_cluster(P, Source) end, Nodes),
    wait_mesh(Nodes, 120000),
    {now_ms() - T0, Nodes}.

joins(Ebin, Port, Ip, Source, Catalog, Nodes) ->
    {PN, Newcomer} = start_node(Ebin, Port, Ip),
    start_cluster(PN, Source),
    Id = list_to_binary(Ip),
    Times = [begin
                 %% Wall clock: the nodes note the time of their nodeup with
                 %% the same clock, so no polling delay is counted.
                 T0 = erlang:system_time(microsecond),
                 ok = caravan_test_catalog:register(Catalog, <<"app">>, #{id => Id,
                                                                          address => Id,
                                                                          port => Port}),
                 wait_all_see(Nodes, Newcomer, true, 30000),
                 Ups = [peer:call(P, caravan_bench_node, nodeup_time, [Newcomer, make_ref()])
                        || {P, _} <- Nodes],
                 T = (lists:max(Ups) - T0) div 1000,
                 ok = caravan_test_catalog:deregister(Catalog, <<"app">>, Id),
                 wait_all_see(Nodes, Newcomer, false, 30000),
                 timer:sleep(100),
                 T
             end || _ <- lists:seq(1, ?JOINS)],
    peer:stop(PN),
    io:format("join latency, Consul blocking queries:        p50 ~b ms, p99 ~b ms (~b joins, "
              "record added -> all ~b nodes connected)~n",
              [pct(Times, 50), pct(Times, 99), ?JOINS, length(Nodes)]),
    io:format("goals: full mesh <= 5000 ms after the last boot; join p50 <= 100 ms~n").

start_node(Ebin, Port, Ip) ->
    {ok, P, N} = peer:start(#{name => "app-" ++ integer_to_list(Port), host => Ip,
                              longnames => true, connection => standard_io, wait_boot => 60000,
                              args => ["-start_epmd", "false", "-epmd_module", "caravan_epmd",
                                       "-kernel", "inet_dist_use_interface", tuple(Ip),
                                       "-kernel", "logger_level", "warning",
                                       "-pa", Ebin, "-setcookie", "caravan-bench"]
                                      ++ string:lexemes(os:getenv("CARAVAN_BENCH_NODE_ARGS", ""), " ")}),
    {ok, _} = peer:call(P, application, ensure_all_started, [caravan], 30000),
    {module, _} = peer:call(P, code, load_binary, [caravan_bench_node, "caravan_bench_node.erl",
                                                   get(node_module)]),
    _ = peer:call(P, caravan_bench_node, start_recorder, []),
    {P, N}.

start_cluster(P, Source) ->
    {ok, _} = peer:call(P, caravan, start_cluster,
                        [app, #{sources => [Source], poll_interval => ?POLL_MS,
                                retry_min => 200}], 30000).

wait_mesh(Nodes, Timeout) ->
    Deadline = now_ms() + Timeout,
    N = length(Nodes) - 1,
    wait(fun() -> lists:all(fun({P, _}) -> length(peer:call(P, erlang, nodes, [])) =:= N end,
                            Nodes) end, Deadline).

wait_all_see(Nodes, Node, Want, Timeout) ->
    Deadline = now_ms() + Timeout,
    wait(fun() -> lists:all(fun({P, _}) -> lists:member(Node, peer:call(P, erlang, nodes, []))
                                               =:= Want end, Nodes) end, Deadline).

wait(Fun, Deadline) ->
    case Fun() of
        true -> ok;
        false ->
            case now_ms() > Deadline of
                true -> error(timeout);
                false -> timer:sleep(5), wait(Fun, Deadline)
            end
    end.

pmap(F, L) ->
    Self = self(),
    NodeBin = get(node_module),
    Pids = [spawn_link(fun() -> put(node_module, NodeBin), Self ! {self(), F(X)} end)
            || X <- L],
    [receive {P, R} -> R end || P <- Pids].

free_port() ->
    {ok, S} = gen_tcp:listen(0, [{ip, {127, 0, 1, 1}}]),
    {ok, P} = inet:port(S),
    gen_tcp:close(S),
    P.

load(Dir, Mod) ->
    {ok, Mod, Bin} = compile:file(filename:join(Dir, atom_to_list(Mod) ++ ".erl"), [binary]),
    {module, Mod} = code:load_binary(Mod, atom_to_list(Mod) ++ ".erl", Bin).

label(Ip) -> "h-" ++ lists:map(fun($.) -> $-; (C) -> C end, Ip).
tuple(Ip) -> "{" ++ lists:map(fun($.) -> $,; (C) -> C end, Ip) ++ "}".
now_ms() -> erlang:monotonic_time(millisecond).

pct(Samples, P) ->
    Sorted = lists:sort(Samples),
    lists:nth(max(1, min(length(Sorted), round(P / 100 * length(Sorted)))), Sorted).

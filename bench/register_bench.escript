#!/usr/bin/env escript
%%! -noshell
%%% Registration benchmark (issue 22), against the Consul test server with
%%% the agent endpoints, real nodes (peer, no epmd) named app-PORT@127.0.2.x:
%%%   - boot: from application:ensure_all_started(caravan) on a booted VM to
%%%     the first caravan:members(app) answer that lists the seed node, with
%%%     and without `register' in the same environment (the goal: under
%%%     50 ms added). Registration runs beside the cluster, not before it.
%%%     Without it the node is put in the catalog by hand before it boots:
%%%     a cluster dials others only while its own node is listed, so with
%%%     registration the time includes the node's own registration and
%%%     first check (the test agent checks at once).
%%%   - departure: a node registered and watched by the seed; init:stop on
%%%     it; the time until the seed's watch (a blocking query) no longer
%%%     lists it (the goal: 100 ms p50). The node deregisters first thing
%%%     in its stop, so the watch hears it before the connections drop.
%%% Times include one peer call over stdio (about 1 ms) where noted.
%%% The seed is listed by hand, so that a build without `register' (an
%%% older checkout, BASELINE in bench/run.sh) runs the boot without it; its
%%% registration rows are then left out, and said so.
%%% CARAVAN_BENCH_ROWS set: one ROW line per figure too (bench/run.sh).
-mode(compile).

-define(RUNS, 7).

main([Ebin, TestDir]) ->
    process_flag(trap_exit, true),
    true = code:add_patha(Ebin),
    BenchDir = filename:dirname(escript:script_name()),
    {ok, Mod, Bin} = compile:file(filename:join(BenchDir, "caravan_register_bench_node.erl"),
                                  [binary]),
    put(node_module, {Mod, Bin}),
    [load(TestDir, M) || M <- [caravan_test_json, caravan_test_http, caravan_test_faults,
                               caravan_test_catalog, caravan_test_consul_agent,
                               caravan_test_consul]],
    {ok, _} = application:ensure_all_started(caravan),
    {module, _} = code:ensure_loaded(caravan),
    Registers = erlang:function_exported(caravan, register_node, 1),
    Port = free_port(),
    Consul = caravan_test_consul:start(#{}),
    Url = caravan_test_catalog:url(Consul),
    try
        Env = #{ebin => Ebin, port => Port, url => Url,
                catalog => caravan_test_catalog:catalog(Consul)},
        %% The seed: listed by hand, watching.
        {PS, Seed} = start_node(Env, "127.0.2.1"),
        list_by_hand(Env, "127.0.2.1"),
        setenv(PS, Env, false),
        {ok, _} = peer:call(PS, application, ensure_all_started, [caravan]),
        io:format("registration benchmark: app-~b@127.0.2.x, ~b cores, ~b runs each~n",
                  [Port, erlang:system_info(logical_processors_available), ?RUNS]),
        Without = [boot(Env, Seed, false, I) || I <- lists:seq(1, ?RUNS)],
        row("boot to members, without register, p50", pct(Without, 50), "ms", lower),
        Registers orelse io:format("boot to the first members answer listing the seed (ms): "
                                   "without register p50 ~.1f (min ~.1f, max ~.1f); this "
                                   "build has no register: the other rows are left out~n",
                                   [pct(Without, 50), lists:min(Without), lists:max(Without)]),
        Registers andalso registered_rows(Env, PS, Seed, Without),
        peer:stop(PS)
    after
        caravan_test_catalog:stop_server(Consul)
    end;
main(_) ->
    io:format(standard_error, "usage: register_bench.escript EBIN TEST_DIR~n", []),
    halt(2).

registered_rows(#{url := Url} = Env, PS, Seed, Without) ->
    With = [boot(Env, Seed, true, I) || I <- lists:seq(1, ?RUNS)],
    io:format("boot to the first members answer listing the seed (ms): "
              "without register p50 ~.1f (min ~.1f, max ~.1f); with p50 ~.1f (min ~.1f, max ~.1f); "
              "added p50 ~.1f ms (goal < 50)~n",
              [pct(Without, 50), lists:min(Without), lists:max(Without),
               pct(With, 50), lists:min(With), lists:max(With),
               pct(With, 50) - pct(Without, 50)]),
    row("boot to members, with register, p50", pct(With, 50), "ms", lower),
    {Mod, Bin} = get(node_module),
    {module, Mod} = peer:call(PS, code, load_binary, [Mod, "bench", Bin]),
    Watch = peer:call(PS, Mod, watch, [Url, "app-dist"]),
    Departures = [depart(Env, PS, Watch, I) || I <- lists:seq(1, ?RUNS)],
    io:format("init:stop -> the seed's watch no longer lists the node (ms): p50 ~.1f, "
              "min ~.1f, max ~.1f (goal p50 < 100)~n",
              [pct(Departures, 50), lists:min(Departures), lists:max(Departures)]),
    row("init:stop -> the watch drops the node, p50", pct(Departures, 50), "ms", lower).

list_by_hand(#{catalog := Catalog, port := Port}, Ip) ->
    ok = caravan_test_catalog:register(Catalog, <<"app-dist">>,
                                       #{id => list_to_binary("static-" ++ Ip),
                                         address => list_to_binary(Ip), port => Port}).

%% Without register the node is listed by hand first (as the static
%% service file does): a cluster dials only while its own node is listed.
boot(#{catalog := Catalog} = Env, Seed, Register, I) ->
    Ip = "127.0.2." ++ integer_to_list(10 + I + case Register of true -> 20; false -> 0 end),
    Id = list_to_binary("static-" ++ Ip),
    Register orelse list_by_hand(Env, Ip),
    {P, _N} = start_node(Env, Ip),
    setenv(P, Env, Register),
    T0 = erlang:monotonic_time(microsecond),
    {ok, _} = peer:call(P, application, ensure_all_started, [caravan]),
    wait(fun() -> lists:member(Seed, peer:call(P, caravan, members, [app])) end, 10000),
    Ms = (erlang:monotonic_time(microsecond) - T0) / 1000,
    Register andalso wait(fun() -> registered(P) end, 5000),
    Register orelse caravan_test_catalog:deregister(Catalog, <<"app-dist">>, Id),
    peer:stop(P),
    Ms.

depart(Env, PS, Watch, I) ->
    Ip = "127.0.2." ++ integer_to_list(100 + I),
    {P, N} = start_node(Env, Ip),
    setenv(P, Env, true),
    {ok, _} = peer:call(P, application, ensure_all_started, [caravan]),
    wait(fun() -> registered(P) end, 5000),
    %% Listed by the seed's watch once its check passed.
    wait(fun() -> lists:member(N, peer:call(PS, caravan, members, [app])) end, 10000),
    T0 = erlang:system_time(microsecond),
    ok = peer:call(P, init, stop, []),
    wait(fun() -> lists:keymember(N, 1, peer:call(PS, caravan_register_bench_node, departures,
                                                 [Watch])) end, 10000),
    {N, T} = lists:keyfind(N, 1, peer:call(PS, caravan_register_bench_node, departures, [Watch])),
    catch peer:stop(P),
    (T - T0) / 1000.

registered(P) ->
    [S] = [S || #{registration := consul} = S <- peer:call(P, caravan, status, [])],
    maps:get(state, S) =:= registered.

setenv(P, #{url := Url}, Register) ->
    ok = peer:call(P, application, load, [caravan]),
    Cluster = [{app, #{sources => [{consul, #{service => "app-dist", basename => "app",
                                              url => Url, wait => 30000}}]}}],
    ok = peer:call(P, application, set_env, [caravan, clusters, Cluster]),
    Reg = case Register of
              true -> [{consul, #{service => "app-dist", url => Url,
                                  check => #{interval => "1s"}}}];
              false -> []
          end,
    ok = peer:call(P, application, set_env, [caravan, register, Reg]).

start_node(#{ebin := Ebin, port := Port}, Ip) ->
    {ok, P, N} = peer:start(#{name => "app-" ++ integer_to_list(Port), host => Ip,
                              longnames => true, connection => standard_io, wait_boot => 60000,
                              args => ["-start_epmd", "false", "-epmd_module", "caravan_epmd",
                                       "-kernel", "inet_dist_use_interface", tuple(Ip),
                                       "-kernel", "logger_level", "error",
                                       "-pa", Ebin, "-setcookie", "caravan-bench"]}),
    {P, N}.

wait(Fun, Ms) ->
    Deadline = erlang:monotonic_time(millisecond) + Ms,
    wait_loop(Fun, Deadline).

wait_loop(Fun, Deadline) ->
    case Fun() of
        true -> true;
        false ->
            case erlang:monotonic_time(millisecond) > Deadline of
                true -> error(timeout);
                false -> timer:sleep(1), wait_loop(Fun, Deadline)
            end
    end.

free_port() ->
    {ok, S} = gen_tcp:listen(0, [{ip, {127, 0, 2, 1}}]),
    {ok, P} = inet:port(S),
    gen_tcp:close(S),
    P.

load(Dir, Mod) ->
    {ok, Mod, Bin} = compile:file(filename:join([Dir, "support", atom_to_list(Mod) ++ ".erl"]),
                                  [binary]),
    {module, Mod} = code:load_binary(Mod, atom_to_list(Mod) ++ ".erl", Bin).

%% With CARAVAN_BENCH_ROWS set, a machine-readable line beside the human
%% one, for bench/compare.escript: ROW, bench, row, value, unit, which way
%% is better (lower or higher).
row(Name, Value, Unit, Better) ->
    os:getenv("CARAVAN_BENCH_ROWS") =:= false orelse
        io:format("ROW\tregister\t~ts\t~w\t~s\t~s~n", [Name, Value, Unit, Better]).

tuple(Ip) -> "{" ++ lists:map(fun($.) -> $,; (C) -> C end, Ip) ++ "}".

pct(Samples, P) ->
    Sorted = lists:sort(Samples),
    lists:nth(max(1, min(length(Sorted), round(P / 100 * length(Sorted)))), Sorted).

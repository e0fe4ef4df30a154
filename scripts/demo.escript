#!/usr/bin/env escript
%%! -noshell
%%% The product demo (`make demo`): a real DNS server (BIND) plays Consul's
%%% DNS interface; four BEAM nodes named app-PORT@127.0.0.1x run caravan with
%%% no epmd, and form a cluster from what DNS lists, by themselves. Then a
%%% record is added (a fourth node joins) and one removed (a node leaves),
%%% printed as it happens. Everything started is stopped at the end.
-mode(compile).

-define(POLL_MS, 1000).
-define(ADDRESSES, ["127.0.0.11", "127.0.0.12", "127.0.0.13", "127.0.0.14"]).

main([Ebin, TestDir]) ->
    process_flag(trap_exit, true),
    true = code:add_patha(Ebin),
    [load(TestDir, M) || M <- [caravan_test_bind]],
    Port = free_port(4370),
    Dir = string:trim(os:cmd("mktemp -d")),
    say("Starting BIND on 127.0.0.1 as the Consul DNS stand-in (zone consul.)"),
    Bind = caravan_test_bind:start(Dir, #{records => ["placeholder.service TXT demo"]}),
    Server = caravan_test_bind:server(Bind),
    say("  listening on ~s; epmd running: ~s", [Server, epmd()]),
    Nodes = [start_node(Ip, Port, Ebin) || Ip <- ?ADDRESSES],
    try
        demo(Bind, Server, Port, Nodes)
    after
        [peer:stop(P) || {P, _} <- Nodes],
        caravan_test_bind:stop(Bind),
        os:cmd("rm -rf " ++ Dir),
        say("~nStopped the nodes and BIND. epmd running: ~s", [epmd()])
    end;
main(_) ->
    io:format(standard_error, "usage: demo.escript EBIN TEST_DIR~n", []),
    halt(2).

demo(Bind, Server, Port, Nodes) ->
    [A, B, C, D] = Nodes,
    say("~nRegistering three instances in DNS: app.service.consul SRV -> port ~b on "
        "127.0.0.11-13", [Port]),
    [add(Bind, Port, Ip) || Ip <- lists:sublist(?ADDRESSES, 3)],
    show_dig(Server),
    say("~nEach node runs caravan:start_cluster(app, #{sources => [{dns, #{query => "
        "\"app.service.consul\", basename => \"app\", servers => [\"~s\"]}}]})", [Server]),
    T0 = now_ms(),
    [start_cluster(N, Server) || N <- Nodes],
    wait_views([A, B, C], 15000),
    say("~nCluster formed in ~b ms, with no epmd and no host list:", [now_ms() - T0]),
    print_views(Nodes),
    say("~nAdding the fourth instance to DNS (nsupdate) ..."),
    T1 = now_ms(),
    add(Bind, Port, lists:nth(4, ?ADDRESSES)),
    wait_views(Nodes, 15000),
    say("  ~s joined ~b ms later (DNS is polled every ~b ms)", [element(2, D), now_ms() - T1, ?POLL_MS]),
    print_views(Nodes),
    say("~nRemoving ~s from DNS ...", [element(2, B)]),
    T2 = now_ms(),
    remove(Bind, Port, lists:nth(2, ?ADDRESSES)),
    wait_views([A, C, D], 15000),
    say("  ~s left ~b ms later; the others let go of it and it let go of them", [element(2, B), now_ms() - T2]),
    print_views(Nodes),
    say("~nepmd running: ~s", [epmd()]).

start_node(Ip, Port, Ebin) ->
    {ok, Peer, Node} = peer:start(#{name => "app-" ++ integer_to_list(Port), host => Ip,
                                    longnames => true, connection => standard_io,
                                    args => ["-start_epmd", "false", "-epmd_module", "caravan_epmd",
                                             "-kernel", "inet_dist_use_interface", tuple(Ip),
                                             "-pa", Ebin, "-setcookie", "caravan-demo"]}),
    {ok, _} = peer:call(Peer, application, ensure_all_started, [caravan]),
    say("Started ~s", [Node]),
    {Peer, Node}.

start_cluster({P, _}, Server) ->
    {ok, _} = peer:call(P, caravan, start_cluster,
                        [app, #{sources => [{dns, #{query => "app.service.consul", basename => "app",
                                                    servers => [Server]}}],
                                poll_interval => ?POLL_MS, retry_min => 200}]).

add(Bind, Port, Ip) ->
    ok = caravan_test_bind:nsupdate(Bind, [io_lib:format("update add app.service.consul. 0 SRV 1 1 ~b ~s.node.dc1.consul.", [Port, label(Ip)]),
                                           io_lib:format("update add ~s.node.dc1.consul. 0 A ~s", [label(Ip), Ip])]).

remove(Bind, Port, Ip) ->
    ok = caravan_test_bind:nsupdate(Bind, [io_lib:format("update delete app.service.consul. SRV 1 1 ~b ~s.node.dc1.consul.", [Port, label(Ip)])]).

show_dig(Server) ->
    [Ip, Port] = string:split(Server, ":"),
    Out = os:cmd("dig +noall +answer +additional @" ++ Ip ++ " -p " ++ Port ++ " app.service.consul SRV"),
    [say("  ~s", [L]) || L <- string:split(string:trim(Out), "\n", all)].

wait_views(Nodes, Timeout) ->
    Deadline = now_ms() + Timeout,
    Want = lists:sort([N || {_, N} <- Nodes]),
    wait_views(Nodes, Want, Deadline).

wait_views(Nodes, Want, Deadline) ->
    case lists:all(fun({P, N}) -> view(P) =:= Want -- [N] end, Nodes) of
        true -> ok;
        false ->
            case now_ms() > Deadline of
                true -> say("  (gave up waiting)");
                false -> timer:sleep(50), wait_views(Nodes, Want, Deadline)
            end
    end.

view(P) -> lists:sort(peer:call(P, erlang, nodes, [])).

print_views(Nodes) ->
    [say("  ~s sees ~p", [N, view(P)]) || {P, N} <- Nodes].

load(Dir, Mod) ->
    {ok, Mod, Bin} = compile:file(filename:join(Dir, atom_to_list(Mod) ++ ".erl"), [binary]),
    {module, Mod} = code:load_binary(Mod, atom_to_list(Mod) ++ ".erl", Bin).

%% The same port on every address, free on all of them.
free_port(P) when P < 65000 ->
    Free = lists:all(fun(Ip) ->
                             {ok, T} = inet:parse_address(Ip),
                             case gen_tcp:listen(P, [{ip, T}]) of
                                 {ok, S} -> gen_tcp:close(S), true;
                                 {error, _} -> false
                             end
                     end, ?ADDRESSES),
    case Free of true -> P; false -> free_port(P + 1) end.

label(Ip) -> "h-" ++ lists:map(fun($.) -> $-; (Ch) -> Ch end, Ip).
tuple(Ip) -> "{" ++ lists:map(fun($.) -> $,; (Ch) -> Ch end, Ip) ++ "}".
now_ms() -> erlang:monotonic_time(millisecond).
say(F) -> say(F, []).
say(F, A) -> io:format(F ++ "~n", A).

epmd() ->
    case string:trim(os:cmd("pgrep -x epmd")) of
        "" -> "no (pgrep -x epmd finds nothing)";
        Pids -> "YES, pids " ++ Pids
    end.

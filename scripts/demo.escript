#!/usr/bin/env escript
%%! -noshell
%%% The demo: three BEAM nodes on this machine, no epmd anywhere, each
%%% listening on the port its name carries; they connect, show each other,
%%% and stop. Run through `make demo`.
-mode(compile).

main([Ebin]) ->
    Ports = [free_port(P) || P <- [4370, 4371, 4372]],
    io:format("~nNo epmd is running: ~ts~n", [epmd_status()]),
    Nodes = [start(Ebin, Port) || Port <- Ports],
    [{First, _} | _] = Nodes,
    io:format("~nConnecting ~s to the others, by name only (ports come from the names):~n",
              [node_of(Nodes, First)]),
    [begin
         T0 = erlang:monotonic_time(microsecond),
         true = peer:call(First, net_kernel, connect_node, [N]),
         io:format("  connect_node(~s) -> true in ~b us~n",
                   [N, erlang:monotonic_time(microsecond) - T0])
     end || {_, N} <- tl(Nodes)],
    timer:sleep(300), % global meshes the other two
    io:format("~nEach node's view of the cluster:~n"),
    [io:format("  ~s sees ~p~n", [N, lists:sort(peer:call(P, erlang, nodes, []))])
     || {P, N} <- Nodes],
    io:format("~nnet_adm:names() on ~s: ~p~n",
              [node_of(Nodes, First), peer:call(First, net_adm, names, [])]),
    io:format("~nStill no epmd: ~ts~n", [epmd_status()]),
    [peer:stop(P) || {P, _} <- Nodes],
    io:format("Stopped all three nodes.~n");
main(_) ->
    io:format(standard_error, "usage: demo.escript EBIN_DIR~n", []),
    halt(2).

start(Ebin, Port) ->
    Name = "app-" ++ integer_to_list(Port),
    {ok, Peer, Node} = peer:start(#{name => Name, host => "127.0.0.1", longnames => true,
                                    connection => standard_io,
                                    args => ["-start_epmd", "false",
                                             "-epmd_module", "caravan_epmd",
                                             "-pa", Ebin, "-setcookie", "caravan-demo"]}),
    io:format("Started ~s (flags: -start_epmd false -epmd_module caravan_epmd)~n", [Node]),
    {Peer, Node}.

node_of(Nodes, Peer) -> element(2, lists:keyfind(Peer, 1, Nodes)).

%% The demo's preferred ports may be taken on this machine: then take the
%% next free one; the name carries whatever port it got.
free_port(Port) when Port < 65535 ->
    case gen_tcp:listen(Port, [{ip, {127, 0, 0, 1}}]) of
        {ok, S} -> gen_tcp:close(S), Port;
        {error, _} -> free_port(Port + 10)
    end.

epmd_status() ->
    case string:trim(os:cmd("pgrep -x epmd")) of
        "" -> "pgrep -x epmd finds nothing";
        Pids -> "EPMD IS RUNNING (pids " ++ Pids ++ ")"
    end.

%%% Distribution without epmd, with real nodes: every node is started by
%%% OTP's peer with `-start_epmd false -epmd_module caravan_epmd', and every
%%% test checks afterwards that no epmd process exists on the machine.
-module(caravan_dist_SUITE).

-include_lib("common_test/include/ct.hrl").
-include_lib("stdlib/include/assert.hrl").

-export([all/0, groups/0, suite/0]).
-export([init_per_suite/1, end_per_suite/1]).
-export([init_per_group/2, end_per_group/2]).
-export([init_per_testcase/2, end_per_testcase/2]).

-export([three_nodes_form_a_full_mesh/1,
         same_port_on_two_addresses/1,
         listen_on_the_names_address/1,
         twenty_quick_restarts/1,
         names_answers/1,
         ipv6/1,
         tls_distribution/1,
         hidden_helper_rpc/1,
         dist_listen_false_remote_shell/1,
         erl_call_by_address/1,
         kill_program_twenty_times/1,
         missing_program_at_boot/1,
         bad_name_fails_clearly/1,
         bad_name_at_run_time/1,
         hidden_false_is_not_hidden/1,
         hidden_at_run_time/1,
         caravan_1_0_1_flags/1,
         erl_epmd_port_is_ignored_with_a_warning/1]).

-import(caravan_test_peer, [start/3, start/4, stop/1, call/4, free_port/0]).

-define(COOKIE, "caravan-test-cookie").

suite() ->
    [{timetrap, {minutes, 3}}].

all() ->
    [{group, mesh}, {group, families}, {group, helpers}, {group, faults}, {group, compat}].

groups() ->
    [{mesh, [], [three_nodes_form_a_full_mesh, same_port_on_two_addresses, names_answers,
                 listen_on_the_names_address, twenty_quick_restarts]},
     {families, [], [ipv6, tls_distribution]},
     {helpers, [], [hidden_helper_rpc, dist_listen_false_remote_shell, erl_call_by_address,
                    hidden_false_is_not_hidden, hidden_at_run_time]},
     {faults, [], [kill_program_twenty_times, missing_program_at_boot, bad_name_fails_clearly,
                   bad_name_at_run_time]},
     {compat, [], [caravan_1_0_1_flags, erl_epmd_port_is_ignored_with_a_warning]}].

init_per_suite(Config) ->
    ok = caravan_test_peer:assert_no_epmd(),
    Config.

end_per_suite(_Config) ->
    ok = caravan_test_peer:assert_no_epmd().

init_per_group(families, Config) ->
    case os:cmd("ip -6 addr show dev lo") of
        "" -> {skip, "no IPv6 loopback on this machine"};
        Out ->
            case string:find(Out, "::1") of
                nomatch -> {skip, "::1 is not configured on lo"};
                _ -> make_tls_files(Config)
            end
    end;
init_per_group(_, Config) ->
    Config.

end_per_group(_, _Config) ->
    ok.

init_per_testcase(_, Config) ->
    Config.

%% Every test leaves no epmd behind (a node that silently fell back to epmd
%% would start one).
end_per_testcase(_, _Config) ->
    ok = caravan_test_peer:assert_no_epmd().

%%% mesh

three_nodes_form_a_full_mesh(_Config) ->
    Nodes = [start("app-" ++ integer_to_list(free_port()), "127.0.0.1", [])
             || _ <- lists:seq(1, 3)],
    [{P1, _N1}, {_P2, N2}, {_P3, N3}] = Nodes,
    %% Each listens on the port in its name.
    [assert_listening({127, 0, 0, 1}, port_of(N)) || {_, N} <- Nodes],
    true = call(P1, net_kernel, connect_node, [N2]),
    true = call(P1, net_kernel, connect_node, [N3]),
    %% global's mesh connects N2 and N3 to each other through caravan too.
    caravan_test_peer:wait_until(
      fun() -> lists:all(fun({P, N}) ->
                                 lists:sort(call(P, erlang, nodes, [])) =:=
                                     lists:sort([M || {_, M} <- Nodes, M =/= N])
                         end, Nodes)
      end, 10000),
    [stop(P) || {P, _} <- Nodes].

same_port_on_two_addresses(_Config) ->
    Port = free_port(),
    Name = "app-" ++ integer_to_list(Port),
    {PA, NA} = start(Name, "127.0.0.2", ["-kernel", "inet_dist_use_interface", "{127,0,0,2}"]),
    {PB, NB} = start(Name, "127.0.0.3", ["-kernel", "inet_dist_use_interface", "{127,0,0,3}"]),
    assert_listening({127, 0, 0, 2}, Port),
    assert_listening({127, 0, 0, 3}, Port),
    true = call(PA, net_kernel, connect_node, [NB]),
    ?assertEqual(NA, call(PB, rpc, call, [NA, erlang, node, []])),
    stop(PA),
    stop(PB).

%% Nodes listen on 0.0.0.0:PORT by default; with `-caravan listen_address
%% name' a node whose host part is an IP literal listens on that address
%% only: two nodes with the same port on 127.0.0.2 and 127.0.0.3 need no
%% -kernel inet_dist_use_interface, and neither answers on 127.0.0.1.
listen_on_the_names_address(_Config) ->
    Port = free_port(),
    Name = "app-" ++ integer_to_list(Port),
    Flag = ["-caravan", "listen_address", "name"],
    {PA, NA} = start(Name, "127.0.0.2", Flag),
    {PB, NB} = start(Name, "127.0.0.3", Flag),
    assert_listening({127, 0, 0, 2}, Port),
    assert_listening({127, 0, 0, 3}, Port),
    ?assertEqual({error, econnrefused}, gen_tcp:connect({127, 0, 0, 1}, Port, [], 2000)),
    true = call(PA, net_kernel, connect_node, [NB]),
    ?assertEqual(NA, call(PB, rpc, call, [NA, erlang, node, []])),
    stop(PA),
    stop(PB),
    %% Without the setting: every interface, as documented.
    {PC, _} = start(Name, "127.0.0.2", []),
    assert_listening({127, 0, 0, 1}, Port),
    stop(PC).

%% The same name stopped and started again at once, 20 times, each time
%% after a connection from another node (the stopping node closes it first,
%% which leaves TIME_WAIT on its port): every start binds the port again,
%% because every OTP listen path opens it with reuseaddr.
twenty_quick_restarts(_Config) ->
    Port = free_port(),
    Name = "app-" ++ integer_to_list(Port),
    {PB, _NB} = start("app-" ++ integer_to_list(free_port()), "127.0.0.1", []),
    T0 = erlang:monotonic_time(millisecond),
    lists:foreach(
      fun(I) ->
              {PA, NA} = start(Name, "127.0.0.1", []),
              ?assertEqual(NA, call(PB, rpc, call, [NA, erlang, node, []]), {cycle, I}),
              stop(PA)
      end, lists:seq(1, 20)),
    ct:log("20 stop/start cycles of ~s: ~b ms", [Name, erlang:monotonic_time(millisecond) - T0]),
    stop(PB).

names_answers(_Config) ->
    Port = free_port(),
    {P, _N} = start("app-" ++ integer_to_list(Port), "127.0.0.1", []),
    Name = "app-" ++ integer_to_list(Port),
    ?assertEqual({ok, [{Name, Port}]}, call(P, net_adm, names, [])),
    ?assertEqual({ok, [{Name, Port}]}, call(P, net_adm, names, ["127.0.0.1"])),
    ?assertEqual({error, address}, call(P, net_adm, names, ["no-such-host.invalid"])),
    stop(P).

%%% families

ipv6(_Config) ->
    Args = ["-proto_dist", "inet6_tcp"],
    {PA, _NA} = start("app-" ++ integer_to_list(free_port({0, 0, 0, 0, 0, 0, 0, 1})), "::1", Args),
    {PB, NB} = start("app-" ++ integer_to_list(free_port({0, 0, 0, 0, 0, 0, 0, 1})), "::1", Args),
    assert_listening({0, 0, 0, 0, 0, 0, 0, 1}, port_of(NB)),
    true = call(PA, net_kernel, connect_node, [NB]),
    ?assertEqual([NB], call(PA, erlang, nodes, [])),
    stop(PA),
    stop(PB).

tls_distribution(Config) ->
    Args = ["-proto_dist", "inet_tls", "-ssl_dist_optfile", ?config(tls_optfile, Config)],
    {PA, _NA} = start("app-" ++ integer_to_list(free_port()), "127.0.0.1", Args),
    {PB, NB} = start("app-" ++ integer_to_list(free_port()), "127.0.0.1", Args),
    true = call(PA, net_kernel, connect_node, [NB]),
    %% The connection really is TLS: the distribution controller is an ssl
    %% connection process, not a plain port.
    {ok, [{NB, Info}]} = call(PA, net_kernel, nodes_info, []),
    ?assertMatch({address, {net_address, _, _, tls, inet}},
                 lists:keyfind(address, 1, Info)),
    %% A plain TCP node cannot connect to a TLS one.
    {PC, _NC} = start("app-" ++ integer_to_list(free_port()), "127.0.0.1", []),
    ?assertEqual(false, call(PC, net_kernel, connect_node, [NB])),
    [stop(P) || P <- [PA, PB, PC]].

make_tls_files(Config) ->
    Files = caravan_test_tls:make(filename:join(?config(priv_dir, Config), "tls"), ["node"]),
    Common = [{certfile, maps:get({cert, "node"}, Files)},
              {keyfile, maps:get({key, "node"}, Files)},
              {cacertfile, maps:get(ca, Files)},
              {verify, verify_peer}],
    Opts = [{server, Common ++ [{fail_if_no_peer_cert, true}]},
            {client, Common}],
    OptFile = filename:join(?config(priv_dir, Config), "ssl_dist.conf"),
    ok = file:write_file(OptFile, io_lib:format("~p.~n", [Opts])),
    [{tls_optfile, OptFile} | Config].

%%% helpers

hidden_helper_rpc(_Config) ->
    Port = free_port(),
    App = "app-" ++ integer_to_list(Port),
    {PA, NA} = start(App, "127.0.0.1", []),
    %% Same host and, by its name, the same port: as a hidden helper it must
    %% listen elsewhere (port 0) instead of failing to bind.
    {PH, NH} = start("rem-a1b2-" ++ App, "127.0.0.1", ["-hidden"]),
    ?assertEqual(NA, call(PH, rpc, call, [NA, erlang, node, []])),
    ?assertEqual([], call(PA, erlang, nodes, [])),        % hidden
    ?assertEqual([NH], call(PA, erlang, nodes, [hidden])),
    assert_listening({127, 0, 0, 1}, Port),
    stop(PH),
    stop(PA).

dist_listen_false_remote_shell(_Config) ->
    Port = free_port(),
    App = "app-" ++ integer_to_list(Port),
    {PA, NA} = start(App, "127.0.0.1", []),
    %% relx's remote_console: a node that does not listen at all.
    {PR, _NR} = start("remsh-" ++ App, "127.0.0.1", ["-dist_listen", "false", "-hidden"]),
    ?assertEqual(NA, call(PR, rpc, call, [NA, erlang, node, []])),
    ?assertEqual({ok, Port}, call(PR, rpc, call, [NA, caravan_epmd, port_of, [App]])),
    stop(PR),
    stop(PA).

%% net_kernel reads -hidden with hidden_argument/0: `-hidden false' is a
%% normal node, which must listen on its own port like any other.
hidden_false_is_not_hidden(_Config) ->
    Port = free_port(),
    {PA, NA} = start("app-" ++ integer_to_list(Port), "127.0.0.1", ["-hidden", "false"]),
    assert_listening({127, 0, 0, 1}, Port),
    {PB, NB} = start("app-" ++ integer_to_list(free_port()), "127.0.0.1", []),
    true = call(PB, net_kernel, connect_node, [NA]),
    ?assertEqual([NA], call(PB, erlang, nodes, [])),   % visible, not hidden
    ?assertEqual([NB], call(PA, erlang, nodes, [])),
    stop(PB),
    stop(PA),
    %% Before net_kernel has decided (no publish_type yet), caravan reads the
    %% flag itself, the way hidden_argument/0 does.
    [begin
         {ok, P, _} = peer:start(#{connection => standard_io, wait_boot => 30000,
                                   args => caravan_test_peer:epmd_less_args() ++ Args}),
         ?assertEqual(Expected, call(P, caravan_epmd, listen_port_please,
                                     ["app-" ++ integer_to_list(Port), "127.0.0.1"]), Args),
         stop(P)
     end || {Args, Expected} <- [{["-hidden", "false"], {ok, Port}},
                                 {["-hidden"], {ok, 0}},
                                 {["-hidden", "true"], {ok, 0}}]].

%% net_kernel:start(Name, #{hidden => true}) on a running node is a helper
%% too: named after the node it talks to, it must not take that node's port.
hidden_at_run_time(_Config) ->
    Port = free_port(),
    App = "app-" ++ integer_to_list(Port),
    {PA, NA} = start(App, "127.0.0.1", []),
    {ok, PH, _} = peer:start(#{connection => standard_io, wait_boot => 30000,
                               args => caravan_test_peer:epmd_less_args()}),
    Helper = list_to_atom("rem-9f3c-" ++ App ++ "@127.0.0.1"),
    ?assertMatch({ok, _}, call(PH, net_kernel, start, [Helper, #{hidden => true}])),
    ?assertEqual(NA, call(PH, rpc, call, [NA, erlang, node, []])),
    ?assertEqual([Helper], call(PA, erlang, nodes, [hidden])),
    stop(PH),
    stop(PA).

erl_call_by_address(_Config) ->
    Port = free_port(),
    App = "app-" ++ integer_to_list(Port),
    {PA, NA} = start(App, "127.0.0.1", []),
    ErlCall = os:find_executable("erl_call"),
    ?assert(is_list(ErlCall)),
    Cmd = io_lib:format("~ts -address 127.0.0.1:~b -c ~s -timeout 10 -a 'erlang node'",
                        [ErlCall, Port, ?COOKIE]),
    Out = string:trim(os:cmd(lists:flatten(Cmd))),
    ?assertEqual(atom_to_list(NA), string:trim(Out, both, "'")),
    stop(PA).

%%% faults

kill_program_twenty_times(_Config) ->
    %% No transitive mesh: A's deliberate disconnects from C must not make
    %% global (prevent_overlapping_partitions) drop B, the connection watched.
    NoMesh = ["-connect_all", "false"],
    {PA, _NA} = start("app-" ++ integer_to_list(free_port()), "127.0.0.1", NoMesh),
    {PB, NB} = start("app-" ++ integer_to_list(free_port()), "127.0.0.1", NoMesh),
    {PC, NC} = start("app-" ++ integer_to_list(free_port()), "127.0.0.1", NoMesh),
    true = call(PA, net_kernel, connect_node, [NB]),
    %% A watcher on A records any nodedown of B: the existing connection
    %% must survive every kill.
    Watcher = call(PA, erlang, spawn, [fun() -> watch_node(NB, []) end]),
    lists:foreach(
      fun(I) ->
              {ok, OsPid} = call(PA, caravan_port, os_pid, [caravan_epmd_port]),
              ok = caravan_test_peer:kill9(OsPid),
              %% A new connection at once, while the program restarts: the
              %% port is not cached, so A must derive it anew.
              true = call(PA, ets, delete_all_objects, [caravan_epmd_ports]),
              _ = call(PA, erlang, disconnect_node, [NC]),
              ?assertEqual(true, call(PA, net_kernel, connect_node, [NC]), {kill, I}),
              caravan_test_peer:wait_until(
                fun() ->
                        case call(PA, caravan_port, os_pid, [caravan_epmd_port]) of
                            {ok, New} -> New =/= OsPid;
                            _ -> false
                        end
                end, 5000),
              ?assert(lists:member(NB, call(PA, erlang, nodes, [])))
      end, lists:seq(1, 20)),
    %% And the restarted program is the one answering, not the fallback.
    true = call(PA, ets, delete_all_objects, [caravan_epmd_ports]),
    {ok, Before} = call(PA, caravan_port, call, [caravan_epmd_port, info, #{}, 1000]),
    _ = call(PA, erlang, disconnect_node, [NC]),
    true = call(PA, net_kernel, connect_node, [NC]),
    {ok, After} = call(PA, caravan_port, call, [caravan_epmd_port, info, #{}, 1000]),
    ?assert(maps:get(requests, After) >= maps:get(requests, Before) + 2),
    ?assertEqual([], call(PA, erlang, apply, [fun() -> Watcher ! {report, self()},
                                                       receive {downs, D} -> D end end, []])),
    [stop(P) || P <- [PA, PB, PC]].

watch_node(Node, Downs) ->
    erlang:monitor_node(Node, true),
    receive
        {nodedown, Node} -> watch_node(Node, [nodedown | Downs]);
        {report, From} -> From ! {downs, Downs}
    end.

missing_program_at_boot(Config) ->
    Log = filename:join(?config(priv_dir, Config), "missing.log"),
    Missing = "/nonexistent/caravan_port",
    LoggerConf = io_lib:format("[{handler,default,logger_std_h,#{config=>#{file=>~p}}}]", [Log]),
    Dir = ?config(priv_dir, Config),
    {PA, NA} = start("app-" ++ integer_to_list(free_port()), "127.0.0.1",
                     ["-caravan", "port_program", "\"" ++ Missing ++ "\"",
                      "-kernel", "logger", lists:flatten(LoggerConf)],
                     #{wd => Dir}),
    {PB, _NB} = start("app-" ++ integer_to_list(free_port()), "127.0.0.1", []),
    %% Up, and reachable: distribution works from the Erlang fallback.
    ?assertEqual(true, call(PB, net_kernel, connect_node, [NA])),
    ?assertEqual(NA, call(PA, erlang, node, [])),
    %% Three more starts tried (counted): they must not log again.
    [_, _, _] = call(PA, caravan_test_peer, restarts_scheduled, [caravan_epmd_port, 3]),
    ok = call(PA, logger_std_h, filesync, [default]),
    {ok, Text} = file:read_file(Log),
    Lines = [L || L <- binary:split(Text, <<"\n">>, [global]),
                  binary:match(L, list_to_binary(Missing)) =/= nomatch],
    ?assertEqual(1, length(Lines), Text),
    ?assertNotEqual(nomatch, binary:match(hd(Lines), <<"cannot start">>)),
    ?assertNot(filelib:is_file(filename:join(Dir, "erl_crash.dump"))),
    stop(PA),
    stop(PB).

bad_name_fails_clearly(Config) ->
    %% app-0 and app-70000 carry no valid port: the node cannot start
    %% distribution, says why in one line naming the node and the rule, and
    %% stops with status 1: no case_clause, no crash reports, no crash dump.
    [begin
         Dir = filename:join(?config(priv_dir, Config), Name),
         ok = filelib:ensure_path(Dir),
         {Status, Out} = boot(Dir, Name ++ "@127.0.0.1", "-eval 'halt(0)'"),
         ct:log("~s: status ~b~n~s", [Name, Status, Out]),
         ?assertEqual(1, Status),
         Lines = [string:trim(L) || L <- string:split(Out, "\n", all), string:trim(L) =/= ""],
         ?assertEqual(["caravan: " ++ Name ++ "@127.0.0.1 cannot start distribution: node " ++
                           Name ++ ": the digits ending a node name are its port and must be "
                       "1..65535"], Lines),
         ?assertNot(filelib:is_file(filename:join(Dir, "erl_crash.dump")))
     end || Name <- ["app-0", "app-70000"]].

%% The same name given to net_kernel:start/2 on a running node: an error
%% tuple (OTP's own: net_kernel reports every listen failure as
%% nodistribution), the line in the log, and the node lives on and can
%% start distribution under a good name.
bad_name_at_run_time(Config) ->
    Log = filename:join(?config(priv_dir, Config), "runtime.log"),
    LoggerConf = io_lib:format("[{handler,default,logger_std_h,#{config=>#{file=>~p}}}]", [Log]),
    {ok, P, _} = peer:start(#{connection => standard_io, wait_boot => 30000,
                              args => caravan_test_peer:epmd_less_args() ++
                                  ["-kernel", "logger", lists:flatten(LoggerConf)]}),
    ?assertMatch({error, _}, call(P, net_kernel, start, ['app-0@127.0.0.1', #{}])),
    ?assertEqual(nonode@nohost, call(P, erlang, node, [])),
    ok = call(P, logger_std_h, filesync, [default]),
    {ok, Text} = file:read_file(Log),
    ?assertMatch([_], binary:matches(Text, <<"caravan: app-0@127.0.0.1 cannot start "
                                             "distribution: node app-0: the digits ending a "
                                             "node name are its port and must be 1..65535">>)),
    Port = free_port(),
    Good = list_to_atom("app-" ++ integer_to_list(Port) ++ "@127.0.0.1"),
    ?assertMatch({ok, _}, call(P, net_kernel, start, [Good, #{}])),
    assert_listening({127, 0, 0, 1}, Port),
    stop(P).

%%% compat

caravan_1_0_1_flags(_Config) ->
    %% Caravan 1.0.1's README, with only the code path changed. Names like
    %% 1.0.1's node3434 (digits right after the base name), on a port free now
    %% instead of a fixed 3434, and on 127.0.0.1 so that nothing depends on
    %% this machine's host name resolving.
    Flags = ["-start_epmd", "false",
             "-epmd_module", "Elixir.Caravan.Epmd.Client",
             "-proto_dist", "Elixir.Caravan.Epmd.Dist",
             "-pa", filename:join(code:lib_dir(caravan), "ebin"),
             "-setcookie", ?COOKIE],
    Start = fun(Name) ->
                    {ok, P, N} = peer:start(#{name => Name, host => "127.0.0.1",
                                              longnames => true, wait_boot => 30000,
                                              connection => standard_io, args => Flags}),
                    {P, N}
            end,
    Port = free_port(),
    {PA, NA} = Start("node" ++ integer_to_list(Port)),
    assert_listening({127, 0, 0, 1}, Port),
    {PB, _NB} = Start("node" ++ integer_to_list(free_port())),
    ?assertEqual(true, call(PB, net_kernel, connect_node, [NA])),
    ?assertEqual('Elixir.Caravan.Epmd.Client', call(PA, net_kernel, epmd_module, [])),
    stop(PA),
    stop(PB).

%% -erl_epmd_port (erl_epmd's way to skip epmd: every node on one port) left
%% in a vm.args next to caravan: the node listens on its name's port, and
%% says in one line that the flag is ignored.
erl_epmd_port_is_ignored_with_a_warning(Config) ->
    Port = free_port(),
    Erl = os:find_executable("erl"),
    Cmd = io_lib:format("cd ~ts && ~ts -noshell -name app-~b@127.0.0.1 ~ts -erl_epmd_port 1 "
                        "-eval 'io:format(\"listening: ~~p~~n\", "
                        "[element(1, gen_tcp:connect({127,0,0,1}, ~b, []))]), halt(0)' "
                        "2>&1 | head -c 4000",
                        [?config(priv_dir, Config), Erl, Port,
                         string:join(caravan_test_peer:epmd_less_args(), " "), Port]),
    Out = os:cmd(lists:flatten(Cmd)),
    ?assertNotEqual(nomatch, string:find(Out, "listening: ok"), Out),
    ?assertNotEqual(nomatch, string:find(Out, io_lib:format("-erl_epmd_port 1 ignored: this node "
                                                            "listens on ~b", [Port])), Out).

%%% internal

%% Boots `erl -name Node' with caravan's flags in Dir; returns its exit
%% status and everything it printed.
boot(Dir, Node, Extra) ->
    Erl = os:find_executable("erl"),
    Cmd = io_lib:format("cd ~ts && timeout 60 ~ts -noshell -name ~ts ~ts ~ts > boot.out 2>&1; "
                        "echo $?", [Dir, Erl, Node,
                                    string:join(caravan_test_peer:epmd_less_args(), " "), Extra]),
    Status = list_to_integer(string:trim(os:cmd(lists:flatten(Cmd)))),
    {ok, Out} = file:read_file(filename:join(Dir, "boot.out")),
    {Status, binary_to_list(Out)}.

port_of(Node) ->
    {ok, Port} = caravan_name:port(Node, 0),
    Port.

assert_listening(Ip, Port) ->
    {ok, S} = gen_tcp:connect(Ip, Port, [], 2000),
    gen_tcp:close(S).

free_port(Ip) ->
    caravan_test_peer:free_port(Ip).

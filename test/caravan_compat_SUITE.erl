%%% Caravan 1.0.1 deployments on caravan: real nodes started with 1.0.1's
%%% flags (`-epmd_module Elixir.Caravan.Epmd.Client', no epmd), 1.0.1's
%%% strategy config under the libcluster stand-in, and a real BIND where
%%% 1.0.1's tests used a fake DNS client or the Internet.
%%%
%%% Nodes are named the 1.0.1 way, `app-PORT@hN.node.dc1.consul': each
%%% host name is an SRV target in BIND's zone, and resolves (to 127.0.0.1)
%%% through an inetrc file given with `-kernel inetrc' (no /etc/hosts edits).
-module(caravan_compat_SUITE).

-include_lib("common_test/include/ct.hrl").
-include_lib("stdlib/include/assert.hrl").

-export([all/0, suite/0]).
-export([init_per_suite/1, end_per_suite/1]).
-export([end_per_testcase/2]).

-export([inet_res_get_nodes/1, strategy_start_link/1, connect_gets_correct_node_names/1,
         named_the_1_0_1_way/1, removed_from_dns_disconnects_nobody/1,
         erl_epmd_port_decides_the_listen_port/1, discover_names_by_target/1,
         erl_inetrc_nameserver_needs_resolv_conf_off/1]).

-define(POLL_MS, 500).
%% caravan_cluster's prune grace (5 s) plus three polls: a strategy that
%% pruned would have disconnected by then.
-define(PRUNE_WAIT_MS, 5000 + 3 * ?POLL_MS).
-define(COOKIE, "caravan-test-cookie").
-define(STRATEGY, 'Elixir.Caravan.Cluster.DnsStrategy').

suite() ->
    [{timetrap, {minutes, 3}}].

all() ->
    [inet_res_get_nodes, strategy_start_link, connect_gets_correct_node_names,
     named_the_1_0_1_way, removed_from_dns_disconnects_nobody,
     erl_epmd_port_decides_the_listen_port, discover_names_by_target,
     erl_inetrc_nameserver_needs_resolv_conf_off].

init_per_suite(Config) ->
    ok = caravan_test_peer:assert_no_epmd(),
    {ok, _} = application:ensure_all_started(caravan),
    Dir = filename:join(?config(priv_dir, Config), "bind"),
    Bind = caravan_test_bind:start(Dir, #{records => ["_xmpp-client._tcp.jabber.service SRV 5 0 5222 jabber-1.node.dc1.consul.",
                                                      "jabber-1.node.dc1 A 127.0.0.1",
                                                      "t.service SRV 1 1 7001 n1.node.dc1.consul.",
                                                      "n1.node.dc1 A 127.0.0.5",
                                                      "t.service SRV 1 1 7002 noaddr.node.dc1.consul."]}),
    [{bind, Bind} | Config].

end_per_suite(Config) ->
    caravan_test_bind:stop(?config(bind, Config)),
    application:stop(caravan),
    ok = caravan_test_peer:assert_no_epmd().

end_per_testcase(_Case, Config) ->
    [caravan_test_peer:stop(P) || P <- peers()],
    erase(peers),
    ok = caravan_test_bind:nsupdate(?config(bind, Config), ["update delete app.service.consul. SRV"]),
    ok = caravan_test_peer:assert_no_epmd().

%%% 1.0.1's test/caravan/dns_client/inet_res_test.exs

%% "get_nodes/1" (Caravan.DnsClient.InetResTest): 1.0.1 asked the Internet
%% for _xmpp-client._tcp.jabber.org; here BIND answers the same shape, and
%% it is found the way 1.0.1 users configured it: as inet_db's nameserver.
inet_res_get_nodes(Config) ->
    Bind = ?config(bind, Config),
    Before = inet_db:res_option(nameservers),
    try
        ok = inet_db:res_option(nameservers, [{{127, 0, 0, 1}, caravan_test_bind:port(Bind)}]),
        [{Port, Name}] = 'Elixir.Caravan.DnsClient.InetRes':get_nodes(
                            <<"_xmpp-client._tcp.jabber.service.consul">>),
        ?assertEqual(true, is_integer(Port)),
        ?assertEqual(true, is_binary(Name)),
        %% and they are the record's port and target host name
        ?assertEqual({5222, <<"jabber-1.node.dc1.consul">>}, {Port, Name}),
        %% Servers named in the call, as a list or as one string (one
        %% string used to be an error, answered as [] like any failure).
        ok = inet_db:res_option(nameservers, []),
        Server = caravan_test_bind:server(Bind),
        [?assertEqual([{5222, <<"jabber-1.node.dc1.consul">>}],
                      'Elixir.Caravan.DnsClient.InetRes':get_nodes(
                        <<"_xmpp-client._tcp.jabber.service.consul">>, #{servers => S}))
         || S <- [[Server], Server, list_to_binary(Server)]]
    after
        inet_db:res_option(nameservers, Before)
    end.

%%% 1.0.1's test/caravan/cluster/dns_strategy_test.exs

%% "start_link/1": the strategy starts under Cluster.Supervisor with 1.0.1's
%% config (a query nothing answers; InetRes, the default client).
strategy_start_link(Config) ->
    Inetrc = inetrc(Config, [], nameserver(Config)),
    {P, _} = start_peer("somenode-" ++ integer_to_list(caravan_test_peer:free_port()),
                        "127.0.0.1", ["-kernel", "inetrc", quoted(Inetrc)]),
    {ok, _} = caravan_test_peer:call(P, application, ensure_all_started, [caravan]),
    Topologies = [{caravan, [{strategy, ?STRATEGY},
                             {config, [{query, <<"example.net.consul">>},
                                       {node_sname, <<"somenode">>},
                                       {poll_interval, 50000},
                                       {dns_client, 'Elixir.Caravan.DnsClient.InetRes'}]}]}],
    ?assertMatch({ok, _}, caravan_test_peer:call(P, caravan_test_libcluster, start, [Topologies])).

%% "connect/1 gets correct node names": with 1.0.1's TestClient as
%% dns_client, the connect MFA is asked for
%% connectnodetest-7000@somenode.foo.example.net. (1.0.1 asserted inside the
%% MFA, where a failure only crashed the strategy; here the names asked for
%% are recorded and compared.)
connect_gets_correct_node_names(_Config) ->
    {P, _} = start_peer("connect-" ++ integer_to_list(caravan_test_peer:free_port()),
                        "127.0.0.1", []),
    {ok, _} = caravan_test_peer:call(P, application, ensure_all_started, [caravan]),
    Topologies = [{caravan, [{strategy, ?STRATEGY},
                             {connect, {caravan_compat_test_client, connect_test, []}},
                             {config, [{dns_client, caravan_compat_test_client},
                                       {node_sname, <<"connectnodetest">>},
                                       {query, <<"fooo">>},
                                       {poll_interval, ?POLL_MS}]}]}],
    {ok, _} = caravan_test_peer:call(P, caravan_test_libcluster, start, [Topologies]),
    caravan_test_peer:wait_until(
      fun() -> caravan_test_peer:call(P, caravan_compat_test_client, connected, []) =/= [] end,
      10000),
    [?assertEqual('connectnodetest-7000@somenode.foo.example.net', N)
     || N <- caravan_test_peer:call(P, caravan_compat_test_client, connected, [])].

%%% caravan's own compat tests

%% A cluster named as 1.0.1 named it (app-PORT@SRV-target-host), DNS servers
%% from inet_db (the inetrc's nameserver; resolv.conf points nowhere
%% reachable), forms and stays formed.
named_the_1_0_1_way(Config) ->
    Nodes = compat_cluster(Config, 3, nameserver(Config), []),
    [?assertEqual("app-" ++ integer_to_list(Port) ++ "@h" ++ integer_to_list(I) ++ ".node.dc1.consul",
                  atom_to_list(N))
     || {I, {{_, N}, Port}} <- lists:zip(lists:seq(1, 3), lists:zip(Nodes, node_ports(Nodes)))],
    wait_mesh(Nodes, 15000),
    Watchers = watch(Nodes),
    wait_polls(Nodes, 4),
    wait_mesh(Nodes, 100),
    assert_no_downs(Watchers).

%% 1.0.1 never disconnected anyone. A node removed from DNS, then every node
%% removed (NXDOMAIN, which is {ok, []}): no connection is lost and the
%% strategy asks libcluster's disconnect MFA for nothing.
removed_from_dns_disconnects_nobody(Config) ->
    Bind = ?config(bind, Config),
    Nodes = compat_cluster(Config, 3, [], [{dns_servers, [caravan_test_bind:server(Bind)]}]),
    wait_mesh(Nodes, 15000),
    Watchers = watch(Nodes),
    [{_, _}, {_, _}, {_, Third}] = Nodes,
    ok = caravan_test_bind:nsupdate(Bind, [io_lib:format("update delete app.service.consul. SRV 1 1 ~b h3.node.dc1.consul.",
                                                         [caravan_name_port(Third)])]),
    %% Its grace over, the others keep it, connected, as a node no source
    %% lists (foreign): not disconnected.
    wait_foreign(Nodes -- [lists:last(Nodes)], 1),
    wait_mesh(Nodes, 100),
    assert_no_downs(Watchers),
    ok = caravan_test_bind:nsupdate(Bind, ["update delete app.service.consul. SRV"]),
    {error, nxdomain} = inet_res:resolve("app.service.consul", in, srv, bind_ns(Config)),
    {ok, []} = caravan_dns:lookup_srv("app.service.consul",
                                      #{servers => [caravan_test_bind:server(Bind)]}),
    wait_foreign(Nodes, 2),
    wait_mesh(Nodes, 100),
    assert_no_downs(Watchers),
    [?assertEqual([], caravan_test_peer:call(P, caravan_compat_test_helper, disconnects, []))
     || {P, _} <- Nodes].

%% Port mapping, as 1.0.1 allowed on OTP 23+: the name carries the outside
%% port (what peers dial), -erl_epmd_port the inside one the VM listens on.
%% A proxy here plays the port mapper.
erl_epmd_port_decides_the_listen_port(_Config) ->
    [Outside, Inside] = free_ports(2),
    {P, Node} = start_peer("app-" ++ integer_to_list(Outside), "127.0.0.1",
                           ["-erl_epmd_port", integer_to_list(Inside)]),
    ?assertEqual(Outside, 'Elixir.Caravan.Epmd':dist_port(Node)),
    %% It listens inside, not on the port its name carries.
    {ok, S} = gen_tcp:connect({127, 0, 0, 1}, Inside, []),
    ok = gen_tcp:close(S),
    ?assertEqual({error, econnrefused}, gen_tcp:connect({127, 0, 0, 1}, Outside, [])),
    ?assertEqual({ok, Inside},
                 caravan_test_peer:call(P, 'Elixir.Caravan.Epmd.Client', listen_port_please,
                                        ["app-" ++ integer_to_list(Outside), "127.0.0.1"])),
    %% A peer dials the outside port, as the name says; the mapper forwards.
    Proxy = start_proxy(Outside, Inside),
    try
        {Q, _} = start_peer("client-" ++ integer_to_list(hd(free_ports(1))), "127.0.0.1", []),
        ?assertEqual(pong, caravan_test_peer:call(Q, net_adm, ping, [Node]))
    after
        stop_proxy(Proxy)
    end.

%% caravan_dns names by SRV target host on request (1.0.1's names, kept
%% even when the target has no address record: the node resolves it its
%% own way); by address otherwise, leaving address-less targets out.
discover_names_by_target(Config) ->
    Source = #{query => "t.service.consul", basename => <<"app">>,
               servers => [caravan_test_bind:server(?config(bind, Config))]},
    ?assertEqual({ok, ['app-7001@n1.node.dc1.consul', 'app-7002@noaddr.node.dc1.consul']},
                 caravan_dns:discover(Source#{name_by => target})),
    ?assertEqual({ok, ['app-7001@127.0.0.5']}, caravan_dns:discover(Source)),
    ?assertEqual({ok, ['app-7001@127.0.0.5']}, caravan_dns:discover(Source#{name_by => address})).

%% README, "Coming from Caravan 1.0.1": an erl_inetrc naming Consul's DNS
%% as `nameserver' resolves the nodes' host names only with
%% `{resolv_conf, ""}' before it. Without it inet_db reads the host's
%% /etc/resolv.conf again at the first lookup and its servers REPLACE the
%% inetrc's: host lookups go to the host's resolver, which knows no
%% Consul names, so nodes are found but every connection is
%% "unreachable". Checked on inet_db's own configuration (the host's
%% resolver is outside this machine, where tests may send nothing); the
%% fixed file is then used for a real lookup, answered by BIND.
erl_inetrc_nameserver_needs_resolv_conf_off(Config) ->
    Dir = ?config(priv_dir, Config),
    [{Ip, Port}] = nameserver(Config),
    Server = io_lib:format("{nameserver, ~p, ~b}.~n{lookup, [dns]}.~n", [Ip, Port]),
    Trap = filename:join(Dir, "inetrc-trap"),
    ok = file:write_file(Trap, Server),
    Fixed = filename:join(Dir, "inetrc-fixed"),
    ok = file:write_file(Fixed, ["{resolv_conf, \"\"}.\n", Server]),
    Peer = fun(Inetrc) ->
                   {P, _} = start_peer("inetrc-" ++ integer_to_list(caravan_test_peer:free_port()),
                                       "127.0.0.1", ["-kernel", "inetrc", quoted(Inetrc)]),
                   ok = caravan_test_peer:call(P, inet_db, res_update_conf, []),
                   P
           end,
    HostServers = case inet_parse:resolv("/etc/resolv.conf") of
                      {ok, Entries} -> [{A, 53} || {nameserver, A} <- Entries];
                      _ -> []
                  end,
    case HostServers of
        [] ->
            ct:comment("no /etc/resolv.conf nameserver here: the trap cannot spring");
        _ ->
            PT = Peer(Trap),
            ?assertEqual(HostServers,
                         caravan_test_peer:call(PT, inet_db, res_option, [nameservers]))
    end,
    PF = Peer(Fixed),
    ?assertEqual([{Ip, Port}], caravan_test_peer:call(PF, inet_db, res_option, [nameservers])),
    ?assertMatch({ok, {hostent, _, _, inet, 4, [{127, 0, 0, 1}]}},
                 caravan_test_peer:call(PF, inet, gethostbyname, ["jabber-1.node.dc1.consul"])).

%%% helpers

peers() -> case get(peers) of undefined -> []; L -> L end.

%% A node with Caravan 1.0.1's epmd flags (no -proto_dist: plain TCP
%% distribution needs none since OTP 23).
start_peer(Name, Host, Extra) ->
    %% The suites' and test/support's folders, as caravan_test_peer's nodes.
    Args = ["-start_epmd", "false", "-epmd_module", "Elixir.Caravan.Epmd.Client",
            "-pa", filename:join(code:lib_dir(caravan), "ebin")]
        ++ lists:append([["-pz", Dir] || Dir <- caravan_test_peer:test_dirs()])
        ++ ["-setcookie", ?COOKIE, "-kernel", "net_ticktime", "4"] ++ Extra,
    {ok, P, N} = peer:start(#{name => Name, host => Host, longnames => true,
                              connection => standard_io, wait_boot => 30000, args => Args}),
    put(peers, [P | peers()]),
    {P, N}.

%% Count nodes app-PORT@hI.node.dc1.consul (I = 1..Count), each listed in
%% BIND, each running the 1.0.1 strategy under the libcluster stand-in
%% with a recording disconnect MFA.
compat_cluster(Config, Count, Nameserver, StrategyConfig) ->
    Bind = ?config(bind, Config),
    Hosts = [host(I) || I <- lists:seq(1, Count)],
    Inetrc = inetrc(Config, Hosts, Nameserver),
    Ports = free_ports(Count),
    ok = caravan_test_bind:nsupdate(
           Bind, lists:append([[io_lib:format("update add app.service.consul. 0 SRV 1 1 ~b ~s.",
                                              [Port, Host]),
                                io_lib:format("update add ~s. 0 A 127.0.0.1", [Host])]
                               || {Port, Host} <- lists:zip(Ports, Hosts)])),
    Topologies = [{caravan, [{strategy, ?STRATEGY},
                             {disconnect, {caravan_compat_test_helper, disconnect, []}},
                             {config, [{query, <<"app.service.consul">>}, {node_sname, <<"app">>},
                                       {poll_interval, ?POLL_MS} | StrategyConfig]}]}],
    Nodes = [start_peer("app-" ++ integer_to_list(Port), Host, ["-kernel", "inetrc", quoted(Inetrc)])
             || {Port, Host} <- lists:zip(Ports, Hosts)],
    [begin
         {ok, _} = caravan_test_peer:call(P, application, ensure_all_started, [caravan]),
         {ok, _} = caravan_test_peer:call(P, caravan_test_libcluster, start, [Topologies])
     end || {P, _} <- Nodes],
    Nodes.

host(I) -> "h" ++ integer_to_list(I) ++ ".node.dc1.consul".

%% An inetrc: the host names on 127.0.0.1 (one entry: inet_db keeps one
%% `host' entry per address, a later one replaces an earlier), looked up
%% in this file first, and the given nameservers.
inetrc(Config, Hosts, Nameservers) ->
    File = filename:join(?config(priv_dir, Config),
                         "inetrc-" ++ integer_to_list(erlang:unique_integer([positive]))),
    ok = file:write_file(File, [[io_lib:format("{host, {127,0,0,1}, ~p}.~n", [Hosts]) || [_ | _] <- [Hosts]],
                                [io_lib:format("{nameserver, ~p, ~b}.~n", [Ip, Port])
                                 || {Ip, Port} <- Nameservers],
                                "{lookup, [file, native]}.\n"]),
    File.

nameserver(Config) ->
    [{{127, 0, 0, 1}, caravan_test_bind:port(?config(bind, Config))}].

bind_ns(Config) ->
    [{nameservers, nameserver(Config)}, {timeout, 2000}].

quoted(File) -> "\"" ++ File ++ "\"".

caravan_name_port(Node) -> 'Elixir.Caravan.Epmd':dist_port(Node).

node_ports(Nodes) -> [caravan_name_port(N) || {_, N} <- Nodes].

free_ports(Count) -> free_ports(Count, [], 50).

free_ports(0, Acc, _) -> lists:reverse(Acc);
free_ports(_, _, 0) -> error(no_free_ports);
free_ports(Count, Acc, Tries) ->
    Port = caravan_test_peer:free_port(),
    case lists:member(Port, Acc) of
        true -> free_ports(Count, Acc, Tries - 1);
        false -> free_ports(Count - 1, [Port | Acc], Tries - 1)
    end.

sees(Node) -> caravan_test_peer:sees(Node).

wait_mesh(Nodes, TimeoutMs) ->
    Names = [N || {_, N} <- Nodes],
    try
        caravan_test_peer:wait_mesh(Nodes, TimeoutMs)
    catch
        error:wait_until_timeout ->
            [ct:log("~p sees ~p; status ~p", [N, sees(Node), caravan_test_peer:call(P, caravan_cluster, status, [caravan])])
             || {P, N} = Node <- Nodes],
            [{P1, N1}, {_, N2} | _] = Nodes,
            ct:log("from ~p: getaddr ~p, connect ~p, lookup ~p, args ~p",
                   [N1, caravan_test_peer:call(P1, inet, getaddr, [element(2, caravan_name:split(N2)), inet]),
                    caravan_test_peer:call(P1, net_kernel, connect_node, [N2]),
                    caravan_test_peer:call(P1, inet_db, res_option, [lookup]),
                    caravan_test_peer:call(P1, init, get_arguments, [])]),
            error({no_mesh, Names})
    end.

%% Until every node's cluster has polled its source successfully N more
%% times (each success stamps last_success anew): the cluster seen stable
%% over N polls, counted rather than slept for.
wait_polls(Nodes, N) ->
    wait_polls(Nodes, N, #{}, erlang:monotonic_time(millisecond) + ?PRUNE_WAIT_MS + 10000).

wait_polls(Nodes, N, Seen, Deadline) ->
    Seen1 = lists:foldl(
              fun({P, _}, Acc) ->
                      Stamps = [T || #{sources := Srcs} <- caravan_test_peer:call(P, caravan,
                                                                                   status, []),
                                     #{last_success := T} <- Srcs, is_integer(T)],
                      Acc#{P => lists:usort(Stamps ++ maps:get(P, Acc, []))}
              end, Seen, Nodes),
    case lists:all(fun({P, _}) -> length(maps:get(P, Seen1)) > N end, Nodes) of
        true -> ok;
        false ->
            case erlang:monotonic_time(millisecond) > Deadline of
                true -> ct:fail({polls_seen, Seen1});
                false -> timer:sleep(50), wait_polls(Nodes, N, Seen1, Deadline)
            end
    end.

%% Until every node's cluster keeps Count nodes as foreign: nodes dropped
%% from the listing whose prune grace is over (prune => false keeps them
%% connected, no longer its own).
wait_foreign(Nodes, Count) ->
    caravan_test_peer:wait_until(
      fun() ->
              lists:all(fun({P, _}) ->
                                [length(F) || #{foreign := F} <- caravan_test_peer:call(
                                                                    P, caravan, status, [])]
                                    =:= [Count]
                        end, Nodes)
      end, ?PRUNE_WAIT_MS + 10000).

watch(Nodes) ->
    [{P, caravan_test_peer:call(P, caravan_test_watcher, start_all, [])} || {P, _} <- Nodes].

assert_no_downs(Watchers) ->
    [?assertEqual([], caravan_test_peer:call(P, caravan_test_watcher, downs, [W]))
     || {P, W} <- Watchers].

%% A TCP forwarder From -> To on 127.0.0.1: the port mapper of a container
%% platform. Ends when stop_proxy/1 closes its listener.
start_proxy(From, To) ->
    Self = self(),
    Pid = spawn(fun() ->
                        {ok, L} = gen_tcp:listen(From, [binary, {ip, {127, 0, 0, 1}},
                                                        {reuseaddr, true}, {active, false}]),
                        Self ! {self(), listening, L},
                        accept_loop(L, To)
                end),
    receive {Pid, listening, L} -> {Pid, L} after 5000 -> error(proxy_stuck) end.

stop_proxy({_Pid, L}) ->
    gen_tcp:close(L).

accept_loop(L, To) ->
    case gen_tcp:accept(L) of
        {ok, A} ->
            {ok, B} = gen_tcp:connect({127, 0, 0, 1}, To, [binary, {active, false}]),
            spawn(fun() -> relay(A, B) end),
            spawn(fun() -> relay(B, A) end),
            accept_loop(L, To);
        {error, _} ->
            ok
    end.

relay(From, To) ->
    case gen_tcp:recv(From, 0) of
        {ok, Data} ->
            case gen_tcp:send(To, Data) of
                ok -> relay(From, To);
                {error, _} -> gen_tcp:close(From)
            end;
        {error, _} ->
            gen_tcp:close(To)
    end.

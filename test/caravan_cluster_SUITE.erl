%%% Clusters that form themselves: real nodes started with peer, each
%%% running the caravan application with a cluster whose source is a real
%%% BIND (DNS), or the Consul and Nomad test servers (blocking queries).
%%% Every node is named app-PORT@ADDRESS with the SAME port: each has an
%%% address of its own, on loopback (127.0.0.x, always) and, where network
%%% namespaces can be made, in its own namespace with a 198.18.0.x address.
-module(caravan_cluster_SUITE).

-include_lib("common_test/include/ct.hrl").
-include_lib("stdlib/include/assert.hrl").

-export([all/0, groups/0, suite/0]).
-export([init_per_suite/1, end_per_suite/1]).
-export([init_per_group/2, end_per_group/2]).
-export([end_per_testcase/2]).

-export([departed_node_is_not_redialled/1, restarted_node_rejoins/1,
         malformed_departure_notice_is_ignored/1]).
-export([forms_from_dns/1, join_and_leave_through_nsupdate/1, prune_false_keeps_nodes/1,
         never_disconnects_foreign_nodes/1, status_and_members/1, source_down_keeps_members/1,
         consul_join_and_leave/1, nomad_join_and_leave/1, libcluster_strategy/1,
         caravan_1_0_1_dns_strategy/1, clean_stop_leaves_tidily/1,
         netns_forms_and_changes/1, netns_cut_off_and_restored/1,
         netns_prune_false_keeps_nodes/1]).

suite() ->
    [{timetrap, {minutes, 4}}].

all() ->
    [{group, loopback}, {group, http}, {group, libcluster}, {group, netns}].

groups() ->
    [{loopback, [], [forms_from_dns, join_and_leave_through_nsupdate, prune_false_keeps_nodes,
                     never_disconnects_foreign_nodes, status_and_members,
                     source_down_keeps_members, clean_stop_leaves_tidily,
                     departed_node_is_not_redialled, restarted_node_rejoins,
                     malformed_departure_notice_is_ignored]},
     {http, [], [consul_join_and_leave, nomad_join_and_leave]},
     {libcluster, [], [libcluster_strategy, caravan_1_0_1_dns_strategy]},
     {netns, [], [netns_forms_and_changes, netns_cut_off_and_restored,
                  netns_prune_false_keeps_nodes]}].

-define(POLL_MS, 500).
%% Dead peers are noticed within about this (net_ticktime 4 s -> 4..5 s).
-define(TICKTIME, "4").

init_per_suite(Config) ->
    ok = caravan_test_peer:assert_no_epmd(),
    {ok, _} = application:ensure_all_started(caravan),
    [{port, caravan_test_peer:free_port()} | Config].

end_per_suite(_Config) ->
    application:stop(caravan),
    ok = caravan_test_peer:assert_no_epmd().

init_per_group(netns, Config) ->
    case caravan_test_netns:setup(6) of
        {ok, Net} ->
            %% Each namespace has a network stack of its own, so every node
            %% can be app-4370, as on hosts a scheduler gives the same port.
            start_bind([{net, Net}, {port, 4370} | Config], caravan_test_netns:bind_address(Net));
        {skip, Why} -> {skip, Why}
    end;
init_per_group(http, Config) ->
    Config;
init_per_group(_, Config) ->
    start_bind(Config, undefined).

end_per_group(netns, Config) ->
    stop_bind(Config),
    caravan_test_netns:teardown(?config(net, Config));
end_per_group(http, _Config) ->
    ok;
end_per_group(_, Config) ->
    stop_bind(Config).

end_per_testcase(_Case, Config) ->
    [caravan_test_peer:stop(P) || {P, _} <- get_nodes()],
    erase(nodes),
    case ?config(bind, Config) of
        undefined -> ok;
        Bind -> reset_zone(Bind)
    end,
    ok = caravan_test_peer:assert_no_epmd().

%%% BIND with an app.service.consul that tests fill with nsupdate

start_bind(Config, ExtraAddress) ->
    Dir = filename:join(?config(priv_dir, Config), "bind-" ++ integer_to_list(erlang:unique_integer([positive]))),
    Extra = case ExtraAddress of
                undefined -> [];
                Ip -> [{Ip, 0}] % 0: filled in below with BIND's own port
            end,
    Bind = caravan_test_bind:start(Dir, #{records => ["placeholder.service TXT x"],
                                          extra_listen => Extra}),
    [{bind, Bind} | Config].

stop_bind(Config) ->
    caravan_test_bind:stop(?config(bind, Config)).

add_record(Bind, Port, Ip) ->
    add_record(Bind, "app", Port, Ip).

add_record(Bind, Service, Port, Ip) ->
    Host = host_label(Ip),
    ok = caravan_test_bind:nsupdate(Bind, [io_lib:format("update add ~s.service.consul. 0 SRV 1 1 ~b ~s.node.dc1.consul.", [Service, Port, Host]),
                                           io_lib:format("update add ~s.node.dc1.consul. 0 A ~s", [Host, Ip])]).

remove_record(Bind, Port, Ip) ->
    remove_record(Bind, "app", Port, Ip).

remove_record(Bind, Service, Port, Ip) ->
    ok = caravan_test_bind:nsupdate(Bind, [io_lib:format("update delete ~s.service.consul. SRV 1 1 ~b ~s.node.dc1.consul.", [Service, Port, host_label(Ip)])]).

reset_zone(Bind) ->
    ok = caravan_test_bind:nsupdate(Bind, ["update delete app.service.consul. SRV"]).

host_label(Ip) -> "h-" ++ lists:map(fun($.) -> $-; (C) -> C end, Ip).

%%% nodes

get_nodes() -> case get(nodes) of undefined -> []; L -> L end.

%% Starts app-Port@Ip with the caravan application and a cluster from Source.
start_node(Config, Ip, Extra) ->
    Port = ?config(port, Config),
    Args = ["-kernel", "inet_dist_use_interface", "{" ++ lists:map(fun($.) -> $,; (C) -> C end, Ip) ++ "}",
            "-kernel", "net_ticktime", ?TICKTIME],
    {P, N} = caravan_test_peer:start("app-" ++ integer_to_list(Port), Ip, Args ++ Extra),
    put(nodes, [{P, N} | get_nodes()]),
    {ok, _} = caravan_test_peer:call(P, application, ensure_all_started, [caravan]),
    {P, N}.

start_cluster({P, _}, Cluster) ->
    {ok, _} = caravan_test_peer:call(P, caravan, start_cluster, [app, Cluster]).

dns_cluster(Config, Extra) ->
    Server = caravan_test_bind:server(?config(bind, Config)),
    maps:merge(#{sources => [{dns, #{query => "app.service.consul", basename => "app",
                                     servers => [Server]}}],
                 poll_interval => ?POLL_MS, retry_min => 200}, Extra).

sees({P, _}) -> lists:sort(caravan_test_peer:call(P, erlang, nodes, [])).

%% Waits until every node in Nodes sees exactly the others.
wait_mesh(Nodes, TimeoutMs) ->
    Names = [N || {_, N} <- Nodes],
    caravan_test_peer:wait_until(
      fun() -> lists:all(fun({_, N} = Node) -> sees(Node) =:= lists:sort(Names -- [N]) end, Nodes) end,
      TimeoutMs).

ips(Count) -> ["127.0.0." ++ integer_to_list(10 + I) || I <- lists:seq(1, Count)].

%% Count nodes on ips(Count), each in DNS.
listed_nodes(Config, Count) ->
    [add_record(?config(bind, Config), ?config(port, Config), Ip) || Ip <- ips(Count)],
    [start_node(Config, Ip, []) || Ip <- ips(Count)].

%% listed_nodes/2 with a cluster each (Policy over the DNS defaults), meshed.
loopback_mesh(Config, Count, Policy) ->
    Nodes = listed_nodes(Config, Count),
    [start_cluster(N, dns_cluster(Config, Policy)) || N <- Nodes],
    wait_mesh(Nodes, 10000),
    Nodes.

%%% loopback

forms_from_dns(Config) ->
    Nodes = listed_nodes(Config, 4),
    T0 = erlang:monotonic_time(millisecond),
    [start_cluster(N, dns_cluster(Config, #{})) || N <- Nodes],
    wait_mesh(Nodes, 10000),
    ct:log("4 nodes formed a full mesh in ~b ms", [erlang:monotonic_time(millisecond) - T0]).

join_and_leave_through_nsupdate(Config) ->
    Bind = ?config(bind, Config),
    Port = ?config(port, Config),
    [A, B, C] = Ips = ips(3),
    [add_record(Bind, Port, Ip) || Ip <- Ips],
    Nodes = [start_node(Config, Ip, []) || Ip <- [A, B, C, "127.0.0.14"]],
    [start_cluster(N, dns_cluster(Config, #{})) || N <- Nodes],
    Three = lists:sublist(Nodes, 3),
    wait_mesh(Three, 10000),
    %% The fourth runs but is not listed: nobody connects to it.
    {_, Fourth} = lists:last(Nodes),
    ?assertNot(lists:member(Fourth, sees(hd(Nodes)))),
    T0 = erlang:monotonic_time(millisecond),
    add_record(Bind, Port, "127.0.0.14"),
    wait_mesh(Nodes, ?POLL_MS + 1000),
    ct:log("joined ~b ms after nsupdate (poll interval ~b ms)",
           [erlang:monotonic_time(millisecond) - T0, ?POLL_MS]),
    %% The nodes that stay must not lose each other while C leaves (OTP 25's
    %% global would make them, were C to drop them one by one).
    Staying = [N || N <- Nodes, N =/= lists:nth(3, Nodes)],
    Watchers = [{P, caravan_test_peer:call(P, caravan_test_watcher, start,
                                           [[M || {_, M} <- Staying]])} || {P, _} <- Staying],
    remove_record(Bind, Port, C),
    {_, NodeC} = lists:nth(3, Nodes),
    caravan_test_peer:wait_until(fun() -> not lists:member(NodeC, sees(hd(Nodes))) end,
                                 ?POLL_MS + 2000),
    timer:sleep(1000),
    [?assertEqual([], caravan_test_peer:call(P, caravan_test_watcher, downs, [W]))
     || {P, W} <- Watchers],
    wait_mesh(Staying, 100).

prune_false_keeps_nodes(Config) ->
    Bind = ?config(bind, Config),
    Port = ?config(port, Config),
    Nodes = loopback_mesh(Config, 3, #{prune => false}),
    remove_record(Bind, Port, lists:nth(3, ips(3))),
    timer:sleep(3 * ?POLL_MS),
    wait_mesh(Nodes, 100). % still a full mesh

never_disconnects_foreign_nodes(Config) ->
    Bind = ?config(bind, Config),
    Port = ?config(port, Config),
    [A, B] = ips(2),
    add_record(Bind, Port, A),
    add_record(Bind, Port, B),
    [NA, NB] = [start_node(Config, Ip, []) || Ip <- [A, B]],
    %% A node no source lists, connected by hand, e.g. by an operator.
    {PF, Foreign} = start_node(Config, "127.0.0.19", ["-connect_all", "false"]),
    start_cluster(NA, dns_cluster(Config, #{})),
    start_cluster(NB, dns_cluster(Config, #{})),
    wait_mesh([NA, NB], 10000),
    true = caravan_test_peer:call(PF, net_kernel, connect_node, [element(2, NA)]),
    timer:sleep(3 * ?POLL_MS),
    ?assert(lists:member(Foreign, sees(NA))).

status_and_members(Config) ->
    Bind = ?config(bind, Config),
    Port = ?config(port, Config),
    [add_record(Bind, Port, Ip) || Ip <- ips(2) ++ ["127.0.0.99"]], % the last never runs
    [NA, NB] = Nodes = [start_node(Config, Ip, []) || Ip <- ips(2)],
    [start_cluster(N, dns_cluster(Config, #{})) || N <- Nodes],
    wait_mesh(Nodes, 10000),
    {PA, _} = NA,
    ?assertEqual(lists:sort([element(2, NA), element(2, NB)]),
                 lists:sort(caravan_test_peer:call(PA, caravan, members, [app]))),
    [Status] = caravan_test_peer:call(PA, caravan, status, []),
    ct:log("status: ~p", [Status]),
    ?assertMatch(#{cluster := app, members := 2, listed := 3, pending_retries := 1,
                   sources := [#{source := dns, listed := 3, last_error := undefined,
                                 last_success := T}]} when is_integer(T), Status).

source_down_keeps_members(Config) ->
    %% A BIND of this test's own, stopped while the cluster runs: members
    %% stay; started again, it is followed again.
    Port = ?config(port, Config),
    Own = ?config(bind, start_bind(Config, undefined)),
    [add_record(Own, Port, Ip) || Ip <- ips(2)],
    Nodes = [start_node(Config, Ip, []) || Ip <- ips(2)],
    Server = caravan_test_bind:server(Own),
    Cluster = #{sources => [{dns, #{query => "app.service.consul", basename => "app",
                                    servers => [Server]}}],
                poll_interval => ?POLL_MS, retry_min => 200},
    [start_cluster(N, Cluster) || N <- Nodes],
    wait_mesh(Nodes, 10000),
    caravan_test_bind:stop(Own),
    timer:sleep(4 * ?POLL_MS),
    wait_mesh(Nodes, 100),
    [#{sources := [#{last_error := Err}]}] = caravan_test_peer:call(element(1, hd(Nodes)),
                                                                     caravan, status, []),
    ct:log("source error while its server is down: ~p", [Err]),
    ?assertNotEqual(undefined, Err),
    %% The server comes back (same port, same zone): the cluster follows it
    %% again by itself, and a node added now joins.
    Back = caravan_test_bind:restart(Own),
    try
        Third = start_node(Config, "127.0.0.13", []),
        start_cluster(Third, Cluster),
        add_record(Back, Port, "127.0.0.13"),
        wait_mesh([Third | Nodes], 10000)
    after
        caravan_test_bind:stop(Back)
    end.

%% OTP 25's global, with prevent_overlapping_partitions, makes nodes that
%% still see a departing node disconnect from each other. A clean stop
%% goes through caravan's prep_stop (global:disconnect/0): the others keep
%% their mesh without a single nodedown among themselves.
clean_stop_leaves_tidily(Config) ->
    Bind = ?config(bind, Config),
    Port = ?config(port, Config),
    Nodes = loopback_mesh(Config, 4, #{}),
    [Leaving | Staying] = Nodes,
    Watchers = [{P, caravan_test_peer:call(P, caravan_test_watcher, start, [[N || {_, N} <- Staying]])}
                || {P, _} <- Staying],
    remove_record(Bind, Port, hd(ips(4))),
    {PL, _} = Leaving,
    ok = caravan_test_peer:call(PL, init, stop, []),
    timer:sleep(2000),
    [?assertEqual([], caravan_test_peer:call(P, caravan_test_watcher, downs, [W])) || {P, W} <- Watchers],
    wait_mesh(Staying, 1000).

%% The leaving node's view and the others' differ (here the others never see
%% it go: they ask another name): it leaves, and they must not redial it
%% (retry_min is 200 ms) although it is still listed for them; back in its
%% own listing, it dials them and the mesh is whole again.
departed_node_is_not_redialled(Config) ->
    Bind = ?config(bind, Config),
    Port = ?config(port, Config),
    [A, B, C] = ips(3),
    [add_record(Bind, Service, Port, Ip) || Service <- ["app", "own"], Ip <- [A, B, C]],
    Nodes = [start_node(Config, Ip, []) || Ip <- [A, B, C]],
    [Stay1, Stay2, Leaving] = Nodes,
    [start_cluster(N, dns_cluster(Config, #{})) || N <- [Stay1, Stay2]],
    Own = #{sources => [{dns, #{query => "own.service.consul", basename => "app",
                                servers => [caravan_test_bind:server(Bind)]}}],
            poll_interval => ?POLL_MS, retry_min => 200},
    start_cluster(Leaving, Own),
    wait_mesh(Nodes, 10000),
    remove_record(Bind, "own", Port, C),
    caravan_test_peer:wait_until(fun() -> sees(Leaving) =:= [] end, 3 * ?POLL_MS),
    timer:sleep(1500),
    ?assertEqual([], sees(Leaving)),
    {_, LeavingName} = Leaving,
    [?assertMatch([#{departed := [LeavingName], pending_retries := 0}],
                  caravan_test_peer:call(P, caravan, status, [])) || {P, _} <- [Stay1, Stay2]],
    add_record(Bind, "own", Port, C),
    wait_mesh(Nodes, ?POLL_MS + 1000),
    [?assertMatch([#{departed := []}], caravan_test_peer:call(P, caravan, status, []))
     || {P, _} <- [Stay1, Stay2]],
    ok = caravan_test_bind:nsupdate(Bind, ["update delete own.service.consul. SRV"]).

%% A rolling restart: a node stops cleanly while still listed (its
%% registration outlives it). The others neither retry it nor log failures
%% meanwhile; the new instance, same name, dials them and the mesh is whole.
restarted_node_rejoins(Config) ->
    Nodes = loopback_mesh(Config, 3, #{}),
    [Stay1, Stay2, {PL, LeavingName}] = Nodes,
    ok = caravan_test_peer:call(PL, init, stop, []),
    caravan_test_peer:wait_until(fun() -> not lists:member(LeavingName, sees(Stay1)) end, 5000),
    timer:sleep(1000),
    [?assertMatch([#{departed := [LeavingName], pending_retries := 0}],
                  caravan_test_peer:call(P, caravan, status, [])) || {P, _} <- [Stay1, Stay2]],
    put(nodes, get_nodes() -- [{PL, LeavingName}]),
    Restarted = start_node(Config, lists:nth(3, ips(3)), []),
    start_cluster(Restarted, dns_cluster(Config, #{})),
    wait_mesh([Stay1, Stay2, Restarted], ?POLL_MS + 2000).

%% The notice comes over distribution from any node: one that is not
%% shaped as caravan sends it neither crashes the cluster nor marks anyone.
malformed_departure_notice_is_ignored(Config) ->
    [{P, _}] = loopback_mesh(Config, 1, #{}),
    Name = caravan_cluster:process_name(app),
    Pid = caravan_test_peer:call(P, erlang, whereis, [Name]),
    [caravan_test_peer:call(P, erlang, send, [Name, Bad])
     || Bad <- [{caravan_cluster_departing, not_a_pid, make_ref()},
                {caravan_cluster_departing, 'app-1@127.0.0.99', self(), make_ref()},
                {caravan_cluster_departing}]],
    ?assertMatch([#{departed := []}], caravan_test_peer:call(P, caravan, status, [])),
    ?assertEqual(Pid, caravan_test_peer:call(P, erlang, whereis, [Name])).

%%% http

consul_join_and_leave(Config) ->
    http_join_and_leave(Config, caravan_test_consul, consul, #{service => "app"}).

nomad_join_and_leave(Config) ->
    http_join_and_leave(Config, caravan_test_nomad, nomad, #{service => "app"}).

http_join_and_leave(Config, ServerMod, Kind, Options) ->
    Server = ServerMod:start(#{}),
    Catalog = caravan_test_catalog:catalog(Server),
    Port = ?config(port, Config),
    Reg = fun(Ip) -> caravan_test_catalog:register(Catalog, <<"app">>,
                                                   #{id => list_to_binary(Ip), port => Port,
                                                     address => list_to_binary(Ip)}) end,
    [A, B, C] = ips(3),
    ok = Reg(A),
    ok = Reg(B),
    Nodes = [start_node(Config, Ip, []) || Ip <- [A, B, C]],
    Source = {Kind, Options#{basename => "app", url => caravan_test_catalog:url(Server), wait => 10000}},
    [start_cluster(N, #{sources => [Source], retry_min => 200}) || N <- Nodes],
    wait_mesh(lists:sublist(Nodes, 2), 5000),
    T0 = erlang:monotonic_time(millisecond),
    ok = Reg(C),
    wait_mesh(Nodes, 1000),
    ct:log("~s: join seen in ~b ms", [Kind, erlang:monotonic_time(millisecond) - T0]),
    ok = caravan_test_catalog:deregister(Catalog, <<"app">>, list_to_binary(C)),
    {_, NodeC} = lists:nth(3, Nodes),
    caravan_test_peer:wait_until(fun() -> not lists:member(NodeC, sees(hd(Nodes))) end, 2000),
    caravan_test_catalog:stop_server(Server).

%%% libcluster

%% libcluster cannot be installed here (hex is unreachable): a stand-in
%% (caravan_test_libcluster) plays Cluster.Supervisor exactly as libcluster's
%% documented contract says: State built as build_initial_state/1 does,
%% strategy.child_spec([State]) started under a supervisor.
libcluster_strategy(Config) ->
    Bind = ?config(bind, Config),
    Nodes = listed_nodes(Config, 3),
    Source = {dns, #{query => "app.service.consul", basename => "app",
                     servers => [caravan_test_bind:server(Bind)]}},
    [{ok, _} = caravan_test_peer:call(P, caravan_test_libcluster, start,
                                      [[{app, [{strategy, caravan_libcluster},
                                               {config, [{sources, [Source]},
                                                         {poll_interval, ?POLL_MS}]},
                                               {connect, {caravan_test_libcluster, connect, []}}]}]])
     || {P, _} <- Nodes],
    wait_mesh(Nodes, 10000),
    %% Connections went through the MFA libcluster handed over.
    Connects = [caravan_test_peer:call(P, caravan_test_libcluster, connects, []) || {P, _} <- Nodes],
    ?assert(lists:sum(Connects) >= 2).

caravan_1_0_1_dns_strategy(Config) ->
    Bind = ?config(bind, Config),
    Nodes = listed_nodes(Config, 3),
    %% Caravan 1.0.1's keys; dns_servers only because this test's DNS server
    %% is not the host's resolver.
    Strategy = [{strategy, 'Elixir.Caravan.Cluster.DnsStrategy'},
                {config, [{query, "app.service.consul"}, {node_sname, "app"},
                          {poll_interval, ?POLL_MS},
                          {dns_servers, [caravan_test_bind:server(Bind)]}]}],
    [?assertMatch({ok, _}, caravan_test_peer:call(P, caravan_test_libcluster, start,
                                                   [[{caravan, Strategy}]]))
     || {P, _} <- Nodes],
    wait_mesh(Nodes, 10000).

%%% netns: one namespace per node, 198.18.0.x addresses, all on one port

netns_start(Config, I) ->
    Net = ?config(net, Config),
    Ip = caravan_test_netns:address(Net, I),
    Port = ?config(port, Config),
    Args = ["-kernel", "net_ticktime", ?TICKTIME],
    {P, N} = caravan_test_peer:start("app-" ++ integer_to_list(Port), Ip, Args,
                                     #{exec => caravan_test_netns:exec(Net, I)}),
    put(nodes, [{P, N} | get_nodes()]),
    {ok, _} = caravan_test_peer:call(P, application, ensure_all_started, [caravan]),
    {P, N}.

netns_cluster(Config, Policy) ->
    Net = ?config(net, Config),
    Server = caravan_test_netns:bind_address(Net) ++ ":" ++
        integer_to_list(caravan_test_bind:port(?config(bind, Config))),
    maps:merge(#{sources => [{dns, #{query => "app.service.consul", basename => "app",
                                     servers => [Server]}}],
                 poll_interval => ?POLL_MS, retry_min => 200, retry_max => 1000}, Policy).

%% Namespaces 1..Listed in DNS, nodes started in 1..Started, each with a
%% cluster under Policy.
netns_nodes(Config, Listed, Started, Policy) ->
    Net = ?config(net, Config),
    [add_record(?config(bind, Config), ?config(port, Config), caravan_test_netns:address(Net, I))
     || I <- lists:seq(1, Listed)],
    Nodes = [netns_start(Config, I) || I <- lists:seq(1, Started)],
    [start_cluster(N, netns_cluster(Config, Policy)) || N <- Nodes],
    Nodes.

netns_forms_and_changes(Config) ->
    Net = ?config(net, Config),
    Bind = ?config(bind, Config),
    Port = ?config(port, Config),
    Nodes = netns_nodes(Config, 5, 6, #{}),
    wait_mesh(lists:sublist(Nodes, 5), 15000),
    T0 = erlang:monotonic_time(millisecond),
    add_record(Bind, Port, caravan_test_netns:address(Net, 6)),
    wait_mesh(Nodes, ?POLL_MS + 1000),
    ct:log("sixth namespace joined in ~b ms", [erlang:monotonic_time(millisecond) - T0]),
    remove_record(Bind, Port, caravan_test_netns:address(Net, 2)),
    {_, Second} = lists:nth(2, Nodes),
    caravan_test_peer:wait_until(fun() -> not lists:member(Second, sees(hd(Nodes))) end, 3000).

netns_cut_off_and_restored(Config) ->
    Net = ?config(net, Config),
    Nodes = netns_nodes(Config, 3, 3, #{}),
    wait_mesh(Nodes, 15000),
    {_, Third} = lists:nth(3, Nodes),
    ok = caravan_test_netns:link(Net, 3, down),
    T0 = erlang:monotonic_time(millisecond),
    caravan_test_peer:wait_until(fun() -> not lists:member(Third, sees(hd(Nodes))) end, 15000),
    ct:log("cut-off namespace dropped out after ~b ms", [erlang:monotonic_time(millisecond) - T0]),
    ok = caravan_test_netns:link(Net, 3, up),
    T1 = erlang:monotonic_time(millisecond),
    wait_mesh(Nodes, 15000),
    ct:log("restored namespace rejoined after ~b ms", [erlang:monotonic_time(millisecond) - T1]).

%% Five hosts, one of them dropped from DNS: with prune => false every
%% connection stays, on every node, not just on the first.
netns_prune_false_keeps_nodes(Config) ->
    Net = ?config(net, Config),
    Bind = ?config(bind, Config),
    Port = ?config(port, Config),
    Nodes = netns_nodes(Config, 5, 5, #{prune => false}),
    wait_mesh(Nodes, 15000),
    remove_record(Bind, Port, caravan_test_netns:address(Net, 5)),
    timer:sleep(3 * ?POLL_MS),
    wait_mesh(Nodes, 100). % still a full mesh

%%% DNS sources of A and AAAA records (`type => a | aaaa | [a, aaaa]'): real
%%% nodes started with peer (caravan_epmd, never epmd), a real BIND serving
%%% the records, and the C program asking it. Every node is named
%%% app-PORT@ADDRESS with the SAME port, as instances of one release are
%%% where A/AAAA discovery is used (Kubernetes, Fly.io, dns_cluster's users):
%%% the records carry no port, the node's own name gives it.
-module(caravan_dns_addr_SUITE).

-include_lib("common_test/include/ct.hrl").
-include_lib("stdlib/include/assert.hrl").

-export([all/0, groups/0, suite/0]).
-export([init_per_suite/1, end_per_suite/1]).
-export([end_per_testcase/2]).
-export([a_records_form_a_mesh/1, port_from_own_name_not_records/1,
         own_address_is_self/1, own_ipv6_address_in_another_form_is_not_dialled/1,
         family_inet6_ignores_ipv4/1, cname_followed_or_refused/1,
         thousand_addresses/1, nxdomain_keeps_last_listing/1,
         no_port_in_own_name_refused_at_start/1, cli_type_a/1]).

suite() ->
    [{timetrap, {minutes, 3}}].

all() ->
    [{group, loopback}].

groups() ->
    [{loopback, [], [a_records_form_a_mesh, port_from_own_name_not_records,
                     own_address_is_self, own_ipv6_address_in_another_form_is_not_dialled,
                     family_inet6_ignores_ipv4, cname_followed_or_refused,
                     thousand_addresses, nxdomain_keeps_last_listing,
                     no_port_in_own_name_refused_at_start, cli_type_a]}].

-define(POLL_MS, 500).
-define(GRACE_MS, 1500).
-define(TICKTIME, "4").
%% Addresses of this suite's nodes (127.0.0.0/8 is all on loopback).
-define(IPS, ["127.0.0.41", "127.0.0.42", "127.0.0.43"]).
-define(BIG, 1000).

init_per_suite(Config) ->
    ok = caravan_test_peer:assert_no_epmd(),
    {ok, _} = application:ensure_all_started(caravan),
    Dir = filename:join(?config(priv_dir, Config), "bind"),
    Records = ["web A " ++ Ip || Ip <- ?IPS] ++
        %% An SRV record at the same name, with another port: the A form
        %% must not take its port from it.
        ["web SRV 1 1 9999 n9.node.dc1", "n9.node.dc1 A 127.0.0.49",
         "dual A 127.0.0.41", "dual AAAA ::1",
         "six AAAA ::1",
         "alias CNAME alias2", "alias2 CNAME web",
         %% Outside every zone this BIND serves, and it does not recurse.
         "ext CNAME web.example.",
         "nodata TXT x"] ++
        [io_lib:format("big A 127.1.~b.~b", [I div 250, I rem 250 + 1])
         || I <- lists:seq(0, ?BIG - 1)],
    Bind = caravan_test_bind:start(Dir, #{records => Records}),
    [{bind, Bind}, {port, caravan_test_peer:free_port()} | Config].

end_per_suite(Config) ->
    caravan_test_bind:stop(?config(bind, Config)),
    application:stop(caravan),
    ok = caravan_test_peer:assert_no_epmd().

end_per_testcase(_Case, _Config) ->
    ok = caravan_test_peer:stop_tracked(),
    ok = caravan_test_peer:assert_no_epmd().

%%% helpers

server(Config) -> caravan_test_bind:server(?config(bind, Config)).

%% app-PORT@Ip (IPv4), listening on Ip only.
start_node(Config, Ip) ->
    start_node(Config, "app-" ++ integer_to_list(?config(port, Config)), Ip,
               caravan_test_peer:interface_args(Ip)).

start_node(_Config, Name, Host, Args) ->
    caravan_test_peer:start_caravan(Name, Host, Args ++ ["-kernel", "net_ticktime", ?TICKTIME],
                                    #{}).

%% A node on ::1 written as Host, distributing over IPv6.
start_v6_node(Config, Host) ->
    start_node(Config, "app-" ++ integer_to_list(?config(port, Config)), Host,
               ["-proto_dist", "inet6_tcp",
                "-kernel", "inet_dist_use_interface", "{0,0,0,0,0,0,0,1}"]).

%% A source with no basename and no port: both from the node's own name.
source(Config, Query, Extra) ->
    {dns, maps:merge(#{query => Query, type => a, servers => [server(Config)]}, Extra)}.

cluster(Source) ->
    #{sources => [Source], poll_interval => ?POLL_MS, retry_min => 200,
      prune_grace => ?GRACE_MS}.

start_cluster({P, _}, Cluster) ->
    {ok, _} = caravan_test_peer:call(P, caravan, start_cluster, [app, Cluster]).

status({P, _}) ->
    [Status] = caravan_test_peer:call(P, caravan, status, []),
    Status.

discover({P, _}, Source) ->
    caravan_test_peer:call(P, caravan, discover, [Source]).

sees(Node) -> caravan_test_peer:sees(Node).

wait_mesh(Nodes, TimeoutMs) -> caravan_test_peer:wait_mesh(Nodes, TimeoutMs).

names(Config, Ips) ->
    ["app-" ++ integer_to_list(?config(port, Config)) ++ "@" ++ Ip || Ip <- Ips].

atoms(Names) -> lists:sort([list_to_atom(N) || N <- Names]).

%%% tests

%% Three nodes whose A records share one name form a full mesh, each named
%% by its own basename and port; a fourth record added later joins.
a_records_form_a_mesh(Config) ->
    Bind = ?config(bind, Config),
    ok = caravan_test_bind:nsupdate(Bind, ["update add join.consul. 0 A 127.0.0.41",
                                           "update add join.consul. 0 A 127.0.0.42"]),
    Nodes = [start_node(Config, Ip) || Ip <- ?IPS],
    [start_cluster(N, cluster(source(Config, "join.consul", #{}))) || N <- Nodes],
    Two = lists:sublist(Nodes, 2),
    wait_mesh(Two, 10000),
    {_, Third} = lists:last(Nodes),
    ?assertNot(lists:member(Third, sees(hd(Nodes)))),
    ok = caravan_test_bind:nsupdate(Bind, ["update add join.consul. 0 A 127.0.0.43"]),
    wait_mesh(Nodes, ?POLL_MS + 3000),
    caravan_test_peer:wait_until(fun() -> maps:get(members, status(hd(Nodes))) =:= 3 end, 5000),
    ?assertMatch(#{members := 3, listed := 3, pending_retries := 0,
                   sources := [#{source := dns, listed := 3, last_error := undefined}]},
                 status(hd(Nodes))),
    ok = caravan_test_bind:nsupdate(Bind, ["update delete join.consul. A"]).

%% The port of A-found nodes is this node's own (its name), never one from
%% the SRV records that share the name; `port' overrides it; [srv, a] is
%% the union of both forms.
port_from_own_name_not_records(Config) ->
    Node = start_node(Config, "127.0.0.41"),
    Port = ?config(port, Config),
    ?assertEqual({ok, atoms(names(Config, ?IPS))},
                 discover(Node, source(Config, "web.consul", #{}))),
    ?assertEqual({ok, atoms(["app-5555@" ++ Ip || Ip <- ?IPS])},
                 discover(Node, source(Config, "web.consul", #{port => 5555}))),
    ?assertEqual({ok, atoms(["app-9999@127.0.0.49" | names(Config, ?IPS)])},
                 discover(Node, source(Config, "web.consul", #{type => [srv, a]}))),
    %% A basename given is used as given, but this node's own address and
    %% port are this node whatever the basename: dialling web-PORT@own would
    %% reach this node's own listener.
    ?assertEqual({ok, atoms(["app-" ++ integer_to_list(Port) ++ "@127.0.0.41" |
                             ["web-" ++ integer_to_list(Port) ++ "@" ++ Ip
                              || Ip <- tl(?IPS)]])},
                 discover(Node, source(Config, "web.consul", #{basename => "web"}))).

%% A listing with this node's own address lists this node: it counts
%% itself in (self_listed) and dials only the others.
own_address_is_self(Config) ->
    [A, B | _] = Nodes = [start_node(Config, Ip) || Ip <- lists:sublist(?IPS, 2)],
    {_, NameA} = A,
    {ok, Listing} = discover(A, source(Config, "web.consul", #{})),
    ?assert(lists:member(NameA, Listing)),
    [start_cluster(N, cluster(source(Config, "web.consul", #{}))) || N <- Nodes],
    wait_mesh(Nodes, 10000),
    %% 3 listed: itself, B, and 127.0.0.43 that runs nothing (one retry).
    caravan_test_peer:wait_until(fun() -> maps:get(members, status(A)) =:= 2 end, 5000),
    ?assertMatch(#{members := 2, listed := 3, pending_retries := 1}, status(A)),
    ?assertEqual([element(2, B)], sees(A)).

%% A node whose name writes its address in another form than the text the
%% listing is built with (0:0:0:0:0:0:0:1 vs ::1) is still itself: it never
%% dials app-PORT@::1, which would reach its own listener under a name that
%% is not its own, and retry for ever.
own_ipv6_address_in_another_form_is_not_dialled(Config) ->
    Node = start_v6_node(Config, "0:0:0:0:0:0:0:1"),
    {_, Name} = Node,
    start_cluster(Node, cluster(source(Config, "six.consul", #{type => aaaa}))),
    timer:sleep(4 * ?POLL_MS),
    ?assertMatch(#{members := 1, listed := 1, pending_retries := 0,
                   sources := [#{listed := 1, last_error := undefined}]}, status(Node)),
    ?assertEqual([], sees(Node)),
    ?assertEqual({ok, [Name]}, discover(Node, source(Config, "six.consul", #{type => aaaa}))).

%% family => inet6 asks AAAA only: the name's A record is no node; unset,
%% the family of the node's own address does the same.
family_inet6_ignores_ipv4(Config) ->
    Node = start_v6_node(Config, "::1"),
    {_, Name} = Node,
    Port = integer_to_list(?config(port, Config)),
    ?assertEqual({ok, [Name]},
                 discover(Node, source(Config, "dual.consul",
                                       #{type => [a, aaaa], family => inet6}))),
    ?assertEqual({ok, atoms(["app-" ++ Port ++ "@127.0.0.41", "app-" ++ Port ++ "@::1"])},
                 discover(Node, source(Config, "dual.consul", #{type => [a, aaaa],
                                                               family => any}))),
    %% family unset: the family of this node's own address. A dual-stack
    %% name's other-family address names no node (each is named by one
    %% address), and dialling it would fail for ever.
    ?assertEqual({ok, [Name]},
                 discover(Node, source(Config, "dual.consul", #{type => [a, aaaa]}))),
    V4 = start_node(Config, "127.0.0.42"),
    ?assertEqual({ok, atoms(["app-" ++ Port ++ "@127.0.0.41"])},
                 discover(V4, source(Config, "dual.consul", #{type => [a, aaaa]}))),
    %% A type the family leaves nothing of is refused at start.
    ?assertMatch({error, {conflict, family, {type, a}}},
                 caravan_test_peer:call(element(1, Node), caravan, start_cluster,
                                        [app, cluster(source(Config, "dual.consul",
                                                             #{family => inet6}))])).

%% A chain of CNAMEs the server follows (in its zone) ends in the
%% addresses; one it does not (outside its zones, no recursion) is an
%% error naming where it ends, which keeps a cluster's last listing,
%% where an empty list would prune every node.
cname_followed_or_refused(Config) ->
    Node = start_node(Config, "127.0.0.41"),
    ?assertEqual({ok, atoms(names(Config, ?IPS))},
                 discover(Node, source(Config, "alias.consul", #{}))),
    {error, {bad_answer, Why}} = discover(Node, source(Config, "ext.consul", #{})),
    ct:log("~s", [Why]),
    ?assertNotEqual(nomatch, string:find(Why, "CNAME chain not followed: it ends at web.example")),
    %% NODATA (the name exists, no address) is an empty listing, not an error.
    ?assertEqual({ok, []}, discover(Node, source(Config, "nodata.consul", #{}))).

%% 1,000 addresses in one answer (over UDP truncated, asked again over
%% TCP), and over TCP from the start.
thousand_addresses(Config) ->
    Node = start_node(Config, "127.0.0.41"),
    lists:foreach(
      fun(Transport) ->
              T0 = erlang:monotonic_time(millisecond),
              {ok, Nodes} = discover(Node, source(Config, "big.consul",
                                                  #{transport => Transport, timeout => 5000})),
              ct:log("~p: ~b nodes in ~b ms", [Transport, length(Nodes),
                                                 erlang:monotonic_time(millisecond) - T0]),
              ?assertEqual(?BIG, length(Nodes))
      end, [udp, tcp]).

%% A name that stops existing (NXDOMAIN) keeps the last listing: the mesh
%% stays, and status says why.
nxdomain_keeps_last_listing(Config) ->
    Bind = ?config(bind, Config),
    Ips = lists:sublist(?IPS, 2),
    ok = caravan_test_bind:nsupdate(Bind, ["update add gone.consul. 0 A " ++ Ip || Ip <- Ips]),
    Nodes = [start_node(Config, Ip) || Ip <- Ips],
    [start_cluster(N, cluster(source(Config, "gone.consul", #{}))) || N <- Nodes],
    wait_mesh(Nodes, 10000),
    ok = caravan_test_bind:nsupdate(Bind, ["update delete gone.consul."]),
    caravan_test_peer:wait_until(
      fun() -> [S] = maps:get(sources, status(hd(Nodes))),
               maps:get(last_error, S) =/= undefined end, 5000),
    timer:sleep(?GRACE_MS + 4 * ?POLL_MS), % past the grace
    wait_mesh(Nodes, 100),
    [?assertMatch(#{members := 2, listed := 2,
                    sources := [#{listed := 2, last_error := {nxdomain, _}}]}, status(N))
     || N <- Nodes].

%% A node named without a port cannot give A-found nodes theirs: refused
%% at start, saying so; with `port' set it starts.
no_port_in_own_name_refused_at_start(Config) ->
    Port = integer_to_list(?config(port, Config)),
    Node = start_node(Config, "app", "127.0.0.44",
                      ["-kernel", "inet_dist_use_interface", "{127,0,0,44}",
                       "-caravan", "default_port", Port]),
    {P, _} = Node,
    {error, {own_name, port, Why}} =
        caravan_test_peer:call(P, caravan, start_cluster,
                               [app, cluster(source(Config, "web.consul", #{}))]),
    ct:log("~s", [Why]),
    ?assertNotEqual(nomatch, string:find(Why, "port is unset and this node's own name "
                                              "(app@127.0.0.44) has no port")),
    ?assertEqual([], caravan_test_peer:call(P, caravan, status, [])),
    {ok, _} = caravan_test_peer:call(P, caravan, start_cluster,
                                     [app, cluster(source(Config, "web.consul",
                                                          #{port => 5555}))]).

%% The CLI's --type a|aaaa: B-PORT@ADDRESS per address, --port required.
cli_type_a(Config) ->
    Dns = " --dns " ++ server(Config),
    {Lines, "rc=0"} = run_cli("lookup web.consul --type a --port 4370" ++ Dns),
    ?assertEqual(["web-4370@" ++ Ip || Ip <- ?IPS], Lines),
    {Both, "rc=0"} = run_cli("lookup dual.consul --type a --type aaaa --port 4370 "
                             "--basename app" ++ Dns),
    ?assertEqual(["app-4370@127.0.0.41", "app-4370@::1"], Both),
    {["::1"], "rc=0"} = run_cli("lookup dual.consul --type aaaa --port 1 --verbose" ++ Dns),
    {Big, "rc=0"} = run_cli("lookup big.consul --type a --port 4370" ++ Dns),
    ?assertEqual(?BIG, length(Big)),
    {[Cname], "rc=1"} = run_cli("lookup ext.consul --type a --port 4370" ++ Dns),
    ?assertNotEqual(nomatch, string:find(Cname, "CNAME chain not followed")),
    {[Gone], "rc=1"} = run_cli("lookup nope.consul --type a --port 4370" ++ Dns),
    ?assertNotEqual(nomatch, string:find(Gone, "(nxdomain)")),
    {[NoPort | _], "rc=2"} = run_cli("lookup web.consul --type a" ++ Dns),
    ?assertNotEqual(nomatch, string:find(NoPort, "needs --port")),
    {[BadType | _], "rc=2"} = run_cli("lookup web.consul --type mx" ++ Dns),
    ?assertNotEqual(nomatch, string:find(BadType, "--type takes srv, a or aaaa")).

run_cli(Args) ->
    {ok, Program} = caravan_config:port_program(),
    Out = os:cmd("ASAN_OPTIONS=\"${ASAN_OPTIONS:+$ASAN_OPTIONS:}exitcode=86\" " ++ Program ++
                     " " ++ Args ++ " 2>&1; echo \"rc=$?\""),
    Lines = string:split(string:trim(Out), "\n", all),
    {lists:droplast(Lines), lists:last(Lines)}.

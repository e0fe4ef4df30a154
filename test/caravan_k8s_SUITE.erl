%%% Kubernetes headless Services, as the Kubernetes DNS-Based Service
%%% Discovery specification, version 1.1.0 (github.com/kubernetes/dns,
%%% docs/specification.md), shapes their records, served by a real BIND for
%%% a `cluster.local' zone, to real nodes (OTP peer, no epmd) named
%%% myapp-PORT@POD_IP as examples/kubernetes/ names them:
%%%
%%% - 2.4.1 "A/AAAA Records": `<service>.<ns>.svc.<zone>. IN A <endpoint-ip>'
%%%   for each ready endpoint, NXDOMAIN when none is ready; and
%%%   `<hostname>.<service>.<ns>.svc.<zone>. IN A <endpoint-ip>' for each
%%%   ready endpoint with a hostname;
%%% - 2.4.2 "SRV Records": `_<port>._<proto>.<service>.<ns>.svc.<zone>. IN
%%%   SRV <weight> <priority> <port-number> <hostname>.<service>.<ns>.svc.<zone>.'
%%%   for each ready endpoint and named port, the Additional section
%%%   possibly holding the targets' A records.
%%%
%%% A Deployment's pods have no `hostname': their hostname is "a unique,
%%% system-assigned identifier" (2.1; CoreDNS writes the IP with dashes,
%%% 10-244-1-5). A StatefulSet's pods (hostname and subdomain set from the
%%% Service) are myapp-0, myapp-1, ...
-module(caravan_k8s_SUITE).

-include_lib("common_test/include/ct.hrl").
-include_lib("stdlib/include/assert.hrl").

-export([all/0, suite/0]).
-export([init_per_suite/1, end_per_suite/1]).
-export([end_per_testcase/2]).
-export([a_form_deployment/1, srv_form_deployment/1, srv_form_statefulset/1,
         not_ready_pod_joins_when_ready/1, no_ready_endpoints_keeps_listing/1]).

suite() ->
    [{timetrap, {minutes, 3}}].

all() ->
    [a_form_deployment, srv_form_deployment, srv_form_statefulset,
     not_ready_pod_joins_when_ready, no_ready_endpoints_keeps_listing].

-define(POLL_MS, 500).
-define(GRACE_MS, 1500).
-define(IPS, ["127.0.0.71", "127.0.0.72", "127.0.0.73"]).
-define(DEPLOY, "myapp-headless.default.svc.cluster.local").
-define(STS, "myapp.default.svc.cluster.local").

init_per_suite(Config) ->
    ok = caravan_test_peer:assert_no_epmd(),
    {ok, _} = application:ensure_all_started(caravan),
    Port = caravan_test_peer:free_port(),
    Dir = filename:join(?config(priv_dir, Config), "bind"),
    Bind = caravan_test_bind:start(Dir, #{origin => "cluster.local",
                                          records => records(Port, ?IPS)}),
    [{bind, Bind}, {port, Port} | Config].

end_per_suite(Config) ->
    caravan_test_bind:stop(?config(bind, Config)),
    application:stop(caravan),
    ok = caravan_test_peer:assert_no_epmd().

end_per_testcase(_Case, Config) ->
    ok = caravan_test_peer:stop_tracked(),
    %% Back to every pod ready.
    [not_ready(Config, Ip) || Ip <- ?IPS],
    [ready(Config, Ip) || Ip <- ?IPS],
    ok = caravan_test_peer:assert_no_epmd().

%% The Deployment's records of one pod, as the endpoints controller and the
%% DNS server add them when it turns ready and remove them when it is not.
deploy_records(Config, Ip) ->
    P = integer_to_list(?config(port, Config)),
    Dashed = lists:map(fun($.) -> $-; (C) -> C end, Ip),
    [{?DEPLOY ++ ". 0 A " ++ Ip, ?DEPLOY ++ ". A " ++ Ip},
     {"_dist._tcp." ++ ?DEPLOY ++ ". 0 SRV 0 100 " ++ P ++ " " ++ Dashed ++ "." ++ ?DEPLOY ++ ".",
      "_dist._tcp." ++ ?DEPLOY ++ ". SRV 0 100 " ++ P ++ " " ++ Dashed ++ "." ++ ?DEPLOY ++ "."},
     {Dashed ++ "." ++ ?DEPLOY ++ ". 0 A " ++ Ip, Dashed ++ "." ++ ?DEPLOY ++ ". A " ++ Ip}].

ready(Config, Ip) ->
    ok = caravan_test_bind:nsupdate(?config(bind, Config),
                                    ["update add " ++ Add || {Add, _} <- deploy_records(Config, Ip)]).

not_ready(Config, Ip) ->
    ok = caravan_test_bind:nsupdate(?config(bind, Config),
                                    ["update delete " ++ Del
                                     || {_, Del} <- deploy_records(Config, Ip)]).

%% The zone, relative to cluster.local., for pods at Ips listening on Port:
%% a Deployment behind headless Service myapp-headless and a StatefulSet
%% behind headless Service myapp, both in namespace default, with the
%% named port `dist'.
records(Port, Ips) ->
    P = integer_to_list(Port),
    Dashed = fun(Ip) -> lists:map(fun($.) -> $-; (C) -> C end, Ip) end,
    Indexed = lists:zip(lists:seq(0, length(Ips) - 1), Ips),
    ["dns-version TXT \"1.1.0\""] ++
        %% 2.4.1, a Deployment: the Service's own name, one A per ready pod.
        ["myapp-headless.default.svc A " ++ Ip || Ip <- Ips] ++
        %% 2.4.2 with system-assigned hostnames, and their 2.4.1 A records.
        lists:append(
          [["_dist._tcp.myapp-headless.default.svc SRV 0 100 " ++ P ++ " " ++ Dashed(Ip) ++
                ".myapp-headless.default.svc",
            Dashed(Ip) ++ ".myapp-headless.default.svc A " ++ Ip] || Ip <- Ips]) ++
        %% A StatefulSet: hostnames myapp-0.., the same three kinds of records.
        ["myapp.default.svc A " ++ Ip || Ip <- Ips] ++
        lists:append(
          [["_dist._tcp.myapp.default.svc SRV 0 100 " ++ P ++ " myapp-" ++ integer_to_list(I) ++
                ".myapp.default.svc",
            "myapp-" ++ integer_to_list(I) ++ ".myapp.default.svc A " ++ Ip]
           || {I, Ip} <- Indexed]).

%%% helpers

start_node(Config, Ip) ->
    Args = caravan_test_peer:interface_args(Ip) ++ ["-kernel", "net_ticktime", "4"],
    caravan_test_peer:start_caravan("myapp-" ++ integer_to_list(?config(port, Config)), Ip, Args,
                                    #{}).

%% The source as examples/kubernetes/ configures it (servers: the BIND
%% here, where a pod would use system).
source(Config, Query, Extra) ->
    {dns, maps:merge(#{query => Query, servers => [caravan_test_bind:server(?config(bind, Config))]},
                     Extra)}.

start_cluster({P, _}, Source) ->
    {ok, _} = caravan_test_peer:call(P, caravan, start_cluster,
                                     [myapp, #{sources => [Source], poll_interval => ?POLL_MS,
                                               retry_min => 200, prune_grace => ?GRACE_MS}]).

status({P, _}) ->
    [Status] = caravan_test_peer:call(P, caravan, status, []),
    Status.

sees(Node) -> caravan_test_peer:sees(Node).

wait_mesh(Nodes, TimeoutMs) -> caravan_test_peer:wait_mesh(Nodes, TimeoutMs).

mesh_from(Config, Source) ->
    Nodes = [start_node(Config, Ip) || Ip <- ?IPS],
    [start_cluster(N, Source) || N <- Nodes],
    wait_mesh(Nodes, 10000),
    %% The mesh can come up (others dialling in) before a node's own
    %% cluster has seen its first listing.
    caravan_test_peer:wait_until(
      fun() -> lists:all(fun(N) -> maps:get(members, status(N)) =:= 3 end, Nodes) end, 5000),
    [?assertMatch(#{members := 3, listed := 3, sources := [#{last_error := undefined}]},
                  status(N)) || N <- Nodes],
    Nodes.

%%% tests

%% The A form: `myapp-headless.NS.svc.cluster.local', basename and port
%% from each pod's own name (myapp-PORT@POD_IP).
a_form_deployment(Config) ->
    mesh_from(Config, source(Config, ?DEPLOY, #{type => a})).

%% The SRV form over a Deployment: targets are system-assigned names; the
%% nodes are named by the targets' addresses and the records' port.
srv_form_deployment(Config) ->
    mesh_from(Config, source(Config, "_dist._tcp." ++ ?DEPLOY, #{basename => "myapp"})).

%% The SRV form over a StatefulSet: targets myapp-0.myapp.default.svc...;
%% nodes are still named by address (name_by => address), as POD_IP names
%% them.
srv_form_statefulset(Config) ->
    Nodes = mesh_from(Config, source(Config, "_dist._tcp." ++ ?STS, #{})),
    Port = integer_to_list(?config(port, Config)),
    ?assertEqual(lists:sort([list_to_atom("myapp-" ++ Port ++ "@" ++ Ip) || Ip <- ?IPS]),
                 lists:sort([N || {_, N} <- Nodes])).

%% A pod not ready yet is not in the records (2.4.1: ready endpoints only):
%% it runs, waits (self_listed), and nobody dials it; once ready (its record
%% added, as the endpoints controller does), it joins.
not_ready_pod_joins_when_ready(Config) ->
    [_, _, Late] = ?IPS,
    not_ready(Config, Late),
    Nodes = [start_node(Config, Ip) || Ip <- ?IPS],
    Source = source(Config, ?DEPLOY, #{type => a}),
    [start_cluster(N, Source) || N <- Nodes],
    Ready = lists:sublist(Nodes, 2),
    wait_mesh(Ready, 10000),
    LateNode = lists:last(Nodes),
    timer:sleep(2 * ?POLL_MS),
    ?assertEqual([], sees(LateNode)),
    ct:log("not ready: ~p", [status(LateNode)]),
    ?assertMatch(#{listed := 2, pending_retries := 0}, status(LateNode)),
    ready(Config, Late),
    wait_mesh(Nodes, ?POLL_MS + 5000).

%% No ready endpoint at all is NXDOMAIN (2.4.1): a rollout that takes every
%% pod out of the records for a moment keeps the cluster as it was.
no_ready_endpoints_keeps_listing(Config) ->
    Nodes = mesh_from(Config, source(Config, ?DEPLOY, #{type => a})),
    %% All at once (one update): taken out one by one, a poll between two
    %% updates would list some pods without the others, and those would
    %% rightly leave.
    ok = caravan_test_bind:nsupdate(?config(bind, Config),
                                    ["update delete " ++ Del || Ip <- ?IPS,
                                                                {_, Del} <- deploy_records(Config, Ip)]),
    {error, nxdomain} = inet_res:resolve(?DEPLOY, in, a,
                                         [{nameservers, [{{127, 0, 0, 1},
                                                          caravan_test_bind:port(
                                                            ?config(bind, Config))}]}]),
    caravan_test_peer:wait_until(
      fun() -> [#{last_error := E}] = maps:get(sources, status(hd(Nodes))), E =/= undefined end,
      5000),
    timer:sleep(?GRACE_MS + 4 * ?POLL_MS),
    wait_mesh(Nodes, 100),
    ?assertMatch(#{members := 3, sources := [#{last_error := {nxdomain, _}}]}, status(hd(Nodes))).

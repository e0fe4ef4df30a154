%%% Fly.io-style private IPv6: nodes on ULA addresses (fd00::/8) in network
%%% namespaces this suite creates (caravan_test_netns), one node each,
%%% distributing over -proto_dist inet6_tcp, named myapp-4370@ADDRESS as
%%% examples/fly/rel/env.sh.eex names them from FLY_PRIVATE_IP, and finding
%%% each other by the AAAA records of one name (Fly's `myapp.internal'),
%%% served by a real BIND. Every namespace listens on the same port 4370.
-module(caravan_fly_SUITE).

-include_lib("common_test/include/ct.hrl").
-include_lib("stdlib/include/assert.hrl").

-export([all/0, suite/0]).
-export([init_per_suite/1, end_per_suite/1]).
-export([end_per_testcase/2]).
-export([aaaa_cluster_over_inet6_tcp/1]).

suite() ->
    [{timetrap, {minutes, 3}}].

all() ->
    [aaaa_cluster_over_inet6_tcp].

-define(COUNT, 3).
-define(PORT, 4370).
-define(POLL_MS, 500).

init_per_suite(Config) ->
    ok = caravan_test_peer:assert_no_epmd(),
    case caravan_test_netns:setup(?COUNT) of
        {ok, Net} ->
            %% Whatever fails from here on, the namespaces go with it: left
            %% behind, their bridge makes every later setup/1 skip.
            try start_suite(Net, Config)
            catch Class:Why:Stack ->
                    caravan_test_netns:teardown(Net),
                    erlang:raise(Class, Why, Stack)
            end;
        {skip, Why} ->
            {skip, Why}
    end.

start_suite(Net, Config) ->
    ok = caravan_test_netns:add_ipv6(Net),
    {ok, _} = application:ensure_all_started(caravan),
    Dir = filename:join(?config(priv_dir, Config), "bind"),
    Records = ["myapp AAAA " ++ caravan_test_netns:address6(Net, I)
               || I <- lists:seq(1, ?COUNT)] ++
        %% The same hosts' IPv4 addresses: `family => inet6' must
        %% leave them out.
        ["myapp A " ++ caravan_test_netns:address(Net, I)
         || I <- lists:seq(1, ?COUNT)],
    %% DNS itself over the bridge's IPv4 address; what is looked up
    %% is IPv6.
    Bind = caravan_test_bind:start(Dir, #{origin => "internal", records => Records,
                                          extra_listen => [{caravan_test_netns:bind_address(Net), 0}]}),
    [{net, Net}, {bind, Bind} | Config].

end_per_suite(Config) ->
    caravan_test_bind:stop(?config(bind, Config)),
    caravan_test_netns:teardown(?config(net, Config)),
    application:stop(caravan),
    ok = caravan_test_peer:assert_no_epmd().

end_per_testcase(_Case, _Config) ->
    ok = caravan_test_peer:stop_tracked(),
    ok = caravan_test_peer:assert_no_epmd().

start_node(Config, I) ->
    Net = ?config(net, Config),
    Ip = caravan_test_netns:address6(Net, I),
    {ok, Tuple} = inet:parse_ipv6strict_address(Ip),
    Args = ["-proto_dist", "inet6_tcp",
            "-kernel", "inet_dist_use_interface", lists:flatten(io_lib:format("~w", [Tuple])),
            "-kernel", "net_ticktime", "4"],
    caravan_test_peer:start_caravan("myapp-" ++ integer_to_list(?PORT), Ip, Args,
                                    #{exec => caravan_test_netns:exec(Net, I)}).

sees(Node) -> caravan_test_peer:sees(Node).

status({P, _}) ->
    [Status] = caravan_test_peer:call(P, caravan, status, []),
    Status.

%% Three nodes, each in its own namespace on fd00:ca7a:..::1x, form a full
%% mesh over IPv6 from AAAA records; the A records of the same name are no
%% nodes (family => inet6); basename and port come from each node's name.
aaaa_cluster_over_inet6_tcp(Config) ->
    Net = ?config(net, Config),
    Server = caravan_test_netns:bind_address(Net) ++ ":" ++
        integer_to_list(caravan_test_bind:port(?config(bind, Config))),
    Nodes = [start_node(Config, I) || I <- lists:seq(1, ?COUNT)],
    Names = [N || {_, N} <- Nodes],
    ?assertEqual([list_to_atom("myapp-4370@" ++ caravan_test_netns:address6(Net, I))
                  || I <- lists:seq(1, ?COUNT)], Names),
    Source = {dns, #{query => "myapp.internal", type => [a, aaaa], family => inet6,
                     servers => [Server]}},
    [{ok, _} = caravan_test_peer:call(P, caravan, start_cluster,
                                      [myapp, #{sources => [Source], poll_interval => ?POLL_MS,
                                                retry_min => 200}])
     || {P, _} <- Nodes],
    caravan_test_peer:wait_until(
      fun() -> lists:all(fun({_, N} = Node) -> sees(Node) =:= lists:sort(Names -- [N]) end,
                         Nodes) end, 20000),
    caravan_test_peer:wait_until(
      fun() -> lists:all(fun(N) -> maps:get(members, status(N)) =:= ?COUNT end, Nodes) end, 5000),
    [?assertMatch(#{members := ?COUNT, listed := ?COUNT, pending_retries := 0,
                    sources := [#{last_error := undefined}]}, status(N)) || N <- Nodes],
    %% The connections really are IPv6.
    {P1, _} = hd(Nodes),
    {ok, Info} = caravan_test_peer:call(P1, net_kernel, node_info, [lists:nth(2, Names)]),
    {address, {net_address, {PeerIp, _}, _, tcp, inet6}} = lists:keyfind(address, 1, Info),
    ?assertEqual(caravan_test_netns:address6(Net, 2), inet:ntoa(PeerIp)).

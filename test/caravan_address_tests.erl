%%% Addresses are read strictly on every path that names or dials a node
%%% (caravan_name:address/1): "127.000.000.010", "2130706442" and
%%% "010.0.0.1", which OTP's lenient parser and resolver read as 127.0.0.8,
%%% 127.0.0.10 and 8.0.0.1, are no node's host. Lists (Consul, Nomad, DNS)
%%% leave them out with a warning that counts them; a callback's answer
%%% holding one is an error (as any entry that names no node); the epmd
%%% module refuses to dial one. Before, each became a node at another host.
-module(caravan_address_tests).

-include_lib("eunit/include/eunit.hrl").

-define(AMBIGUOUS, ["127.000.000.010", "2130706442", "010.0.0.1", "0x7f.0.0.1", "127.1",
                    "1.2.3.04", "fe80::1%eth0", <<"127.000.000.010">>]).

address_test_() ->
    [?_assertEqual({ok, {10, 0, 0, 1}}, caravan_name:address("10.0.0.1")),
     ?_assertEqual({ok, {16#fd00, 0, 0, 0, 0, 0, 0, 1}}, caravan_name:address(<<"FD00::1">>)),
     ?_assertEqual({ok, {0, 0, 0, 0, 0, 16#ffff, 16#0a00, 1}},
                   caravan_name:address("::ffff:10.0.0.1")),
     ?_assertEqual({ok, {10, 0, 0, 1}}, caravan_name:address({10, 0, 0, 1})),
     ?_assertEqual(host_name, caravan_name:address("node7.example")),
     ?_assertEqual(host_name, caravan_name:address(<<"n1.node.dc1.consul">>)),
     ?_assertEqual(host_name, caravan_name:address("1.2.3.4.")),
     [?_assertEqual({A, ambiguous}, {A, caravan_name:address(A)}) || A <- ?AMBIGUOUS]].

%% node/3 never turns one into an address: it raises, as it does for any
%% host it cannot name. (Before: 'app-4370@8.0.0.1' for "010.0.0.1".)
node_refuses_ambiguous_test_() ->
    [?_assertError({not_a_host, A}, caravan_name:node("app", 4370, A)) || A <- ?AMBIGUOUS]
        ++ [?_assertEqual('app-4370@10.0.0.10', caravan_name:node("app", 4370, "10.0.0.10")),
            ?_assertEqual('app-4370@fd00::1', caravan_name:node("app", 4370, "FD00::0001")),
            ?_assertEqual('app-4370@node7.example',
                          caravan_name:node("app", 4370, "node7.example"))].

%% The list paths (Consul, Nomad, DNS name_by) leave them out, keep the rest.
nodes_leave_ambiguous_out_test_() ->
    Pairs = [{1, "127.000.000.010"}, {2, <<"2130706442">>}, {3, "010.0.0.1"}, {4, "10.0.0.4"},
             {5, <<"node5.example">>}, {6, {10, 0, 0, 6}}],
    Members = [#{address => <<"127.000.000.010">>, port => 1},
               #{address => <<"2130706442">>, port => 2},
               #{address => <<"10.0.0.3">>, port => 3}],
    [?_assertEqual(['app-4@10.0.0.4', 'app-5@node5.example', 'app-6@10.0.0.6'],
                   caravan_name:nodes("app", Pairs)),
     ?_assertEqual(['app-3@10.0.0.3'], caravan_catalog:nodes("app", Members)),
     ?_assertEqual([], caravan_name:nodes("app", [{1, "0177.0.0.1"}]))].

%% The epmd module dials no such host: inet:getaddr/2 would read it as
%% another address (8.0.0.1 here).
epmd_does_not_dial_ambiguous_test_() ->
    [?_assertMatch({error, _}, caravan_epmd:address_please("app-4370", "010.0.0.1", inet)),
     ?_assertMatch({error, _}, caravan_epmd:address_please("app-4370", "2130706442", inet)),
     ?_assertEqual({ok, {127, 0, 0, 10}, 4370, 6},
                   caravan_epmd:address_please("app-4370", "127.0.0.10", inet))].

%% A callback source's answer with one is an error, the listing kept, as
%% for any entry that names no node (README, "Clusters that form
%% themselves").
callback_answer_with_ambiguous_is_an_error_test_() ->
    {setup,
     fun() -> {ok, _} = application:ensure_all_started(caravan) end,
     fun(_) -> _ = caravan:stop_cluster(addr_cb) end,
     {timeout, 30, fun callback_answer/0}}.

callback_answer() ->
    Fun = fun() -> {ok, [{"010.0.0.1", 4370}, {"10.0.0.2", 4370}]} end,
    {ok, _} = caravan:start_cluster(addr_cb, #{sources => [{callback,
                                                              #{basename => "app",
                                                                discover => Fun}}],
                                                poll_interval => 100,
                                                self_listed => false}),
    Error = wait_error(addr_cb, 50),
    ?assertEqual({bad_callback_result, {"010.0.0.1", 4370}}, Error),
    [#{listed := Listed}] = [S || #{cluster := addr_cb, sources := [S]} <- caravan:status()],
    ?assertEqual(0, Listed),
    ok = caravan:stop_cluster(addr_cb).

%% The first source's last_error, asked up to Tries times 100 ms apart.
wait_error(_Cluster, 0) ->
    none;
wait_error(Cluster, Tries) ->
    case [E || #{cluster := C, sources := [#{last_error := E}]} <- caravan:status(),
               C =:= Cluster, E =/= undefined] of
        [E] -> E;
        [] -> timer:sleep(100), wait_error(Cluster, Tries - 1)
    end.

%%% Discovery arguments and node names, without any server: options of the
%%% wrong type come back as {error, {bad_args, _}} (not a crash in the
%%% caller), and every source names nodes the same way.
-module(caravan_discover_tests).

-include_lib("eunit/include/eunit.hrl").

bad_option_types_are_errors_test_() ->
    Consul = #{service => "app", basename => "app", url => "http://127.0.0.1:1"},
    Dns = #{query => "app.service.consul", basename => "app"},
    [?_assertMatch({error, {bad_args, _}}, caravan:discover({consul, Consul#{url => 42}})),
     ?_assertMatch({error, {bad_args, _}}, caravan:discover({consul, Consul#{token => self()}})),
     ?_assertMatch({error, {bad_args, _}}, caravan:discover({consul, Consul#{tag => {a, b}}})),
     ?_assertMatch({error, {bad_args, _}},
                   caravan:discover({nomad, Consul#{namespace => [foo]}})),
     ?_assertMatch({error, {bad_args, _}}, caravan:discover({dns, Dns#{servers => [1, 2]}})),
     ?_assertMatch({error, {bad_args, _}}, caravan:discover({dns, Dns#{query => 3.5}}))].

node_names_test_() ->
    [?_assertEqual('app-4370@10.0.0.5', caravan_name:node("app", 4370, {10, 0, 0, 5})),
     ?_assertEqual('app-4370@10.0.0.5', caravan_name:node(<<"app">>, 4370, <<"10.0.0.5">>)),
     ?_assertEqual('app-1@fd00::1', caravan_name:node("app", 1, {16#fd00, 0, 0, 0, 0, 0, 0, 1})),
     %% The same address written differently is the same node.
     ?_assertEqual('app-1@fd00::1', caravan_name:node("app", 1, "FD00:0:0::1")),
     ?_assertEqual('app-1@node7.example', caravan_name:node("app", 1, <<"node7.example">>)),
     ?_assertEqual(['app-1@10.0.0.1', 'app-2@10.0.0.1'],
                   caravan_http:nodes("app", [#{address => <<"10.0.0.1">>, port => 2},
                                              #{address => <<"10.0.0.1">>, port => 1},
                                              #{address => <<"10.0.0.1">>, port => 1},
                                              #{address => <<"10.0.0.9">>, port => 0}]))].

%%% caravan_register_config: what a registration is made of, and what is
%%% refused before anything is sent (the key named, the token never shown).
-module(caravan_register_config_tests).

-include_lib("eunit/include/eunit.hrl").

args_from_the_node_name_test() ->
    {ok, Args} = caravan_register_config:args(#{service => "app-dist", tags => ["v1"],
                                                meta => #{zone => "a"}},
                                              'app-4370@10.0.0.5'),
    ?assertEqual(#{id => <<"app-dist-app-4370@10.0.0.5">>, name => <<"app-dist">>,
                   address => <<"10.0.0.5">>, port => 4370, tags => [<<"v1">>],
                   meta => #{<<"erlang_node">> => <<"app-4370@10.0.0.5">>, <<"zone">> => <<"a">>},
                   check => tcp}, Args).

no_distribution_is_an_error_test() ->
    ?assertMatch({error, {no_distribution, _}},
                 caravan_register_config:args(#{service => "s"}, nonode@nohost)).

check_options_test() ->
    {ok, Ttl} = caravan_register_config:args(#{service => "s", check => #{ttl => "15s",
                                                                          deregister_after => "1m"}},
                                             'a-1@h'),
    ?assertMatch(#{check := ttl, ttl := <<"15s">>, deregister_after := <<"1m">>}, Ttl),
    {ok, None} = caravan_register_config:args(#{service => "s", check => none}, 'a-1@h'),
    ?assertMatch(#{check := none}, None).

ttl_ms_test() ->
    ?assertEqual(15000, caravan_register_config:ttl_ms(#{check => #{ttl => "15s"}})),
    ?assertEqual(90000, caravan_register_config:ttl_ms(#{check => #{ttl => "1m30s"}})),
    ?assertEqual(1500, caravan_register_config:ttl_ms(#{check => #{ttl => "1.5s"}})),
    ?assertEqual(undefined, caravan_register_config:ttl_ms(#{check => #{interval => "1s"}})).

refusals_name_the_key_test_() ->
    Cases = [{#{service => "a.b"}, "service"},
             {#{service => "a_b"}, "service"},
             {#{service => lists:duplicate(64, $a)}, "service"},
             {#{}, "service"},
             {#{service => "s", tags => "v1"}, "tags"},
             {#{service => "s", tags => [1]}, "tags"},
             {#{service => "s", meta => #{"erlang_node" => "x"}}, "meta"},
             {#{service => "s", check => #{interval => "10"}}, "interval"},
             {#{service => "s", check => #{type => http}}, "type"},
             {#{service => "s", recheck => 0}, "recheck"},
             {#{service => "s", token => {secret}}, "token"},
             {#{service => "s", colour => red}, "colour"}],
    [?_test(begin
                {error, Reason} = caravan_register_config:check({consul, Opts}),
                Text = caravan_register_config:text(Reason),
                ?assertNotEqual(nomatch, binary:match(Text, list_to_binary(Key))),
                ?assertEqual(nomatch, binary:match(Text, <<"secret">>))
            end) || {Opts, Key} <- Cases].

good_configs_pass_test() ->
    ?assertEqual(ok, caravan_register_config:check({consul, #{service => "app-dist"}})),
    ?assertEqual(ok, caravan_register_config:check(
                       {consul, #{service => "App-9", tags => [<<"a">>], meta => #{k_1 => "v"},
                                  check => #{interval => "1m30s", timeout => ".5s",
                                             deregister_after => "90m"}}})),
    ?assertMatch({error, {bad_registration, _}}, caravan_register_config:check({etcd, #{}})).

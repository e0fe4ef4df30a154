%%% One check of a source's options (caravan_options), shared by discover,
%%% lookup_srv, watch and cluster sources: unknown keys and bad values are
%%% refused before anything runs, with the key named. Before it, a DNS
%%% timeout that was not an integer started a cluster whose poller crashed
%%% every 500 ms and made discover/lookup_srv raise badarith; `type' on a
%%% DNS source and `consistency' on a Consul one were ignored (a key since
%%% issue 24: the tests below misspell it); a watch without basename started
%%% and died at its first answer; members/1 of an unknown cluster exited.
-module(caravan_options_tests).

-include_lib("eunit/include/eunit.hrl").

-define(DNS, #{query => "app.service.consul", basename => "app"}).
-define(CONSUL, #{service => "app", basename => "app", url => "http://127.0.0.1:1"}).

app_test_() ->
    {setup,
     fun() -> {ok, _} = application:ensure_all_started(caravan) end,
     fun(_) -> ok end,
     [{"discover refuses unknown keys, naming them", fun discover_unknown_keys/0},
      {"discover and lookup_srv refuse a DNS timeout that is no integer",
       fun dns_timeout_is_bad_args/0},
      {"start_cluster checks every option of every source", fun cluster_sources_checked/0},
      {"the proxy option of consul and nomad sources is taken", fun proxy_is_taken/0},
      {"watch refuses a source without basename or a subscriber that is no pid",
       fun watch_refuses/0},
      {"members of an unknown cluster is not_found", fun members_not_found/0},
      {"discover, watch and start_cluster refuse the same URLs, proxies, queries and "
       "basenames", fun same_refusals/0}]}.

discover_unknown_keys() ->
    {error, {bad_args, Type}} = caravan:discover({dns, ?DNS#{rtype => a}}),
    ?assertNotEqual(nomatch, string:find(Type, "no key rtype")),
    {error, {bad_args, Stale}} = caravan:discover({consul, ?CONSUL#{consistancy => stale}}),
    ?assertNotEqual(nomatch, string:find(Stale, "no key consistancy")),
    ?assertMatch({error, {bad_args, <<"options: basename is required">>}},
                 caravan:discover({nomad, maps:remove(basename, ?CONSUL)})),
    ?assertMatch({error, {bad_args, _}}, caravan:discover({dns, #{}})),
    ?assertMatch({error, {bad_args, _}}, caravan:discover({etcd, #{}})),
    ?assertMatch({error, {bad_args, _}}, caravan:discover({nomad, ?CONSUL#{per_page => 0}})),
    ?assertMatch({error, {bad_args, _}}, caravan:discover({consul, ?CONSUL#{passing => yes}})).

dns_timeout_is_bad_args() ->
    Owner = whereis(caravan_lookup),
    [begin
         {error, {bad_args, Why}} = caravan:discover({dns, ?DNS#{timeout => Bad}}),
         ?assertNotEqual(nomatch, string:find(Why, "timeout must be an integer in 1..60000")),
         ?assertMatch({error, {bad_args, _}},
                      caravan:lookup_srv("app.service.consul", #{timeout => Bad})),
         ?assertMatch({error, {bad_args, _}},
                      caravan_dns:lookup_addr("localhost", #{timeout => Bad}))
     end || Bad <- ["5000", 1.5, 0, 60001, infinity]],
    ?assertMatch({error, {bad_args, _}}, caravan:lookup_srv("a", #{tries => 11})),
    ?assertMatch({error, {bad_args, _}}, caravan:lookup_srv("a", #{transport => tls})),
    ?assertMatch({error, {bad_args, _}}, caravan:lookup_srv("a", #{type => srv})),
    ?assertMatch({error, {bad_args, _}}, caravan:lookup_srv("a", [{timeout, 100}])),
    ?assertEqual(Owner, whereis(caravan_lookup)).

cluster_sources_checked() ->
    Start = fun(Source) ->
                    Result = caravan:start_cluster(opts, #{sources => [Source]}),
                    _ = caravan:stop_cluster(opts), % started by a check that missed
                    Result
            end,
    ?assertEqual({error, {bad_config, timeout, "5000"}}, Start({dns, ?DNS#{timeout => "5000"}})),
    ?assertEqual({error, {bad_config, tries, 0}}, Start({dns, ?DNS#{tries => 0}})),
    ?assertEqual({error, {bad_config, transport, tls}}, Start({dns, ?DNS#{transport => tls}})),
    ?assertEqual({error, {unknown_key, rtype}}, Start({dns, ?DNS#{rtype => a}})),
    %% This node (not distributed) has no name to take a port or basename from.
    {error, {own_name, port, NoPort}} = Start({dns, ?DNS#{type => a}}),
    ?assertNotEqual(nomatch, string:find(NoPort, "port is unset and this node's own name")),
    {error, {own_name, basename, NoBase}} = Start({dns, maps:remove(basename, ?DNS)}),
    ?assertNotEqual(nomatch, string:find(NoBase, "basename is unset and this node is not "
                                                 "distributed")),
    ?assertEqual(ok, caravan_options:check(dns, ?DNS#{type => [a, aaaa], port => 4370})),
    ?assertEqual({error, {bad_config, type, [a, a]}}, Start({dns, ?DNS#{type => [a, a]}})),
    ?assertEqual({error, {bad_config, type, mx}}, Start({dns, ?DNS#{type => mx}})),
    ?assertEqual({error, {bad_config, port, 0}}, Start({dns, ?DNS#{type => a, port => 0}})),
    ?assertEqual({error, {conflict, port, {type, srv}}}, Start({dns, ?DNS#{port => 4370}})),
    ?assertEqual({error, {conflict, family, {type, a}}},
                 Start({dns, ?DNS#{type => a, port => 4370, family => inet6}})),
    ?assertEqual({error, {conflict, name_by, {type, [srv, a]}}},
                 Start({dns, ?DNS#{type => [srv, a], port => 4370, name_by => target}})),
    {error, {bad_args, FamilyText}} =
        caravan:discover({dns, ?DNS#{type => a, port => 4370, family => inet6}}),
    ?assertNotEqual(nomatch, string:find(FamilyText, "family cannot go with type => a")),
    ?assertEqual({error, {unknown_key, consistancy}},
                 Start({consul, ?CONSUL#{consistancy => stale}})),
    ?assertEqual({error, {bad_config, wait, 1.5}}, Start({consul, ?CONSUL#{wait => 1.5}})),
    ?assertEqual({error, {bad_config, timeout, 0}}, Start({nomad, ?CONSUL#{timeout => 0}})),
    ?assertEqual({error, {bad_config, max_bytes, 1 bsl 40}},
                 Start({nomad, ?CONSUL#{max_bytes => 1 bsl 40}})),
    ?assertEqual({error, {bad_config, max_members, 0}},
                 Start({consul, ?CONSUL#{max_members => 0}})),
    ?assertEqual({error, {bad_config, token, self()}}, Start({consul, ?CONSUL#{token => self()}})),
    ?assertEqual({error, {unknown_key, query}}, Start({consul, ?CONSUL#{query => "x"}})),
    ?assertEqual({error, {unknown_key, service}},
                 Start({callback, #{basename => "a", discover => fun() -> {ok, []} end,
                                    service => "a"}})),
    ?assertEqual([], caravan_cluster_sup:clusters()),
    %% The same rules the config check of every cluster uses, those started
    %% from the application environment and by libcluster included.
    ?assertEqual({error, {bad_config, timeout, "5000"}},
                 caravan_cluster_config:check(#{sources => [{dns, ?DNS#{timeout => "5000"}}]})).

proxy_is_taken() ->
    [?assertEqual(ok, caravan_cluster_config:check(#{sources => [{Kind, ?CONSUL#{proxy => P}}]}))
     || Kind <- [consul, nomad], P <- [none, "http://10.0.0.1:3128", <<"http://proxy:3128">>]],
    ?assertEqual(ok, caravan_options:check_watch({nomad, ?CONSUL#{proxy => none}}, self())),
    ?assertEqual({error, {bad_config, proxy, 3128}},
                 caravan_cluster_config:check(#{sources => [{consul, ?CONSUL#{proxy => 3128}}]})),
    ?assertEqual({error, {unknown_key, proxy}},
                 caravan_cluster_config:check(#{sources => [{dns, ?DNS#{proxy => none}}]})).

watch_refuses() ->
    Before = supervisor:which_children(caravan_watch_sup),
    ?assertEqual({error, {missing_key, basename}},
                 caravan:watch({consul, maps:remove(basename, ?CONSUL)}, self())),
    ?assertEqual({error, {bad_config, subscriber, me}}, caravan:watch({consul, ?CONSUL}, me)),
    ?assertEqual({error, {unknown_key, consistancy}},
                 caravan:watch({consul, ?CONSUL#{consistancy => stale}}, self())),
    ?assertMatch({error, {bad_source, _}}, caravan:watch({dns, ?DNS}, self())),
    ?assertEqual(Before, supervisor:which_children(caravan_watch_sup)).

members_not_found() ->
    ?assertEqual({error, not_found}, caravan:members(no_such_cluster)),
    ?assertEqual({error, not_found}, caravan:stop_cluster(no_such_cluster)).

%% Issue 18, attacker's items 8 and 9: values discover refused (the C
%% program's url_refusal, its proxy and DNS name checks) or that no node
%% name can carry were taken by watch/2 and start_cluster/2, and a binary
%% basename was never checked. Each is now refused by all three, naming
%% the key.
same_refusals() ->
    Long = binary:copy(<<"a">>, 300),
    Http = [{url, U} || U <- ["ftp://x", "HTTP://127.0.0.1:1", "http://a@b@127.0.0.1:1",
                              "http://", "http://127.0.0.1:0", "http://127.0.0.1:x",
                              "http://[::1", <<"http://", Long/binary, ":1">>]] ++
        [{proxy, P} || P <- ["ftp://x", "socks5://127.0.0.1:1080", <<"socks5h://p:1">>,
                             "http://a@b@p:1", "http:///p:1"]] ++
        [{basename, B} || B <- [<<"a", 0, "b">>, <<"a@b">>, "a@b", Long, binary_to_list(Long),
                                <<"a b">>, "a\nb", <<"\x{e9}"/utf8>>]] ++
        %% Attacker 2: what the C program refuses, refused at start too.
        [{url, U} || U <- ["http://%31%32%37.0.0.1:1", "http://localhost..:1", "http://.x:1",
                           "http://[zz%25lo]:1"]] ++
        [{K, <<"a", 0, "b">>} || K <- [ca_file, cert_file, url]],
    [begin
         Source = {Kind, ?CONSUL#{Key => Value}},
         Expected = {error, {bad_config, Key, shown(Key, Value)}},
         ?assertMatch({{error, {bad_args, _}}, _}, {caravan:discover(Source), Source}),
         ?assertEqual({Expected, Source}, {caravan:watch(Source, self()), Source}),
         ?assertEqual({Expected, Source}, {start(Source), Source})
     end || Kind <- [consul, nomad], {Key, Value} <- Http],
    [?assertEqual({error, {bad_config, K, <<"a", 0, "b">>}},
                  start({consul, ?CONSUL#{K => <<"a", 0, "b">>}}))
     || K <- [tag, dc, tagged_address]],
    ?assertEqual({error, {bad_config, namespace, <<"a", 0, "b">>}},
                 start({nomad, ?CONSUL#{namespace => <<"a", 0, "b">>}})),
    Dns = [{query, Q} || Q <- [<<"a", 0, "b">>, Long, binary_to_list(Long), "a\0b", "a..b",
                               ".a", "_x._tcp..a.test"]] ++
        [{basename, <<"a", 0, "b">>}, {basename, <<"a@b">>}, {basename, Long}],
    [begin
         Source = {dns, ?DNS#{Key => Value}},
         ?assertMatch({{error, {bad_args, _}}, _}, {caravan:discover(Source), Source}),
         ?assertEqual({{error, {bad_config, Key, Value}}, Source}, {start(Source), Source})
     end || {Key, Value} <- Dns],
    %% A token the C program refuses (CR/LF, NUL) is refused at start, and
    %% never repeated in the answer: it may be a real one with a stray newline.
    [begin
         Source = {consul, ?CONSUL#{token => Token}},
         Masked = {error, {bad_config, token, <<"(token masked)">>}},
         {error, {bad_args, Why}} = caravan:discover(Source),
         ?assertEqual(nomatch, string:find(Why, "s3cr")),
         ?assertEqual(Masked, caravan:watch(Source, self())),
         ?assertEqual(Masked, start(Source))
     end || Token <- ["s3cr\net", <<"s3cr\r\n">>, <<"s3cr", 0, "et">>]],
    %% A refused URL's password is in no answer (README, Security).
    [begin
         Source = {Kind, ?CONSUL#{Key => "http://user:s3cret@h:0/v1"}},
         Masked = {error, {bad_config, Key, <<"http://***@h:0/v1">>}},
         ?assertEqual(Masked, caravan:watch(Source, self())),
         ?assertEqual(Masked, start(Source))
     end || Kind <- [consul, nomad], Key <- [url, proxy]],
    %% The C program's words for a URL it refuses.
    {error, {bad_args, Text}} = caravan:discover({consul, ?CONSUL#{url => "http://a@b@h:1"}}),
    ?assertNotEqual(nomatch, string:find(Text, "user info holds an '@'")),
    %% What stays valid.
    Ok = [{url, "http://127.0.0.1:1"}, {url, <<"https://[::1]:8501/x">>}, {url, "http://h:"},
          {url, "unix:///run/consul.sock"}, {url, "http://user:pw@h:1"},
          {proxy, "https://p"}, {basename, binary:copy(<<"a">>, 249)}, {basename, "app-1.x_y"},
          {url, "http://[fe80::1%25eth0]:8500"}, {url, "http://consul.service.consul.:8500"}],
    [?assertEqual({ok, Key, Value}, {caravan_options:check(consul, ?CONSUL#{Key => Value}),
                                     Key, Value})
     || {Key, Value} <- Ok],
    ?assertEqual(ok, caravan_options:check(dns, ?DNS#{query => binary:copy(<<"a">>, 255)})),
    [?assertEqual(ok, caravan_options:check(dns, ?DNS#{query => Q})) || Q <- ["a.b.", "."]],
    ?assertEqual([], caravan_cluster_sup:clusters()).

%% What a refusal repeats of a URL: the user info is masked (a password).
shown(Key, "http://a@b@" ++ Rest) when Key =:= url; Key =:= proxy ->
    list_to_binary("http://***@" ++ Rest);
shown(_Key, Value) ->
    Value.

start(Source) ->
    Result = caravan:start_cluster(same, #{sources => [Source]}),
    _ = caravan:stop_cluster(same),
    Result.

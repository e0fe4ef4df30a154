%%% Discovery over HTTP: Consul's health API and Nomad's service API, one-shot
%%% and watched with blocking queries, against the test servers in test/
%%% (caravan_test_consul, caravan_test_nomad), which follow the products'
%%% documented behaviour (no Consul or Nomad can be installed here).
-module(caravan_catalog_SUITE).

-include_lib("common_test/include/ct.hrl").
-include_lib("stdlib/include/assert.hrl").

%% The resolver group's DNS server: an address on a veth whose peer has
%% none, with a permanent neighbour entry so that not even ARP answers.
%% Queries leave and vanish: no reply, no ICMP, no error, ever.
-define(BLACKHOLE, "198.18.78.99").

-export([all/0, groups/0, suite/0]).
-export([init_per_group/2, end_per_group/2]).
-export([init_per_testcase/2, end_per_testcase/2]).

-export([empty_service_address/1, tagged_addresses/1, passing_and_tag/1, acl_token/1,
         escaped_strings/1, malformed_bodies/1, big_body_is_bounded/1, server_errors/1,
         refused_body_ends_the_download/1, big_answer_memory_is_bounded/1,
         refused_last_piece_is_answered_at_once/1,
         environment_defaults/1, cli_lookup/1,
         token_echoed_in_error_bodies/1, strict_json/1, index_header_is_checked/1,
         one_bad_entry_is_dropped/1, nomad_long_next_token/1,
         watch_registration_and_deregistration/1, wakeup_without_change/1,
         check_turns_critical/1, index_goes_backwards/1, server_restarted_mid_watch/1,
         watch_keeps_members_on_errors/1,
         https_with_test_ca/1, wrong_ca_fails/1, mutual_tls/1,
         nomad_discover/1, nomad_pagination/1, nomad_token/1, nomad_unix_socket/1,
         nomad_watch/1, blackholed_resolver/1, resolved_host_name/1,
         ipv4_shorthand_hosts/1, small_answer_behind_big_ones/1,
         pongs_between_the_chunks_of_a_big_answer/1, pings_while_big_bodies_download/1, exit_while_big_bodies_download/1,
         small_requests_while_big_bodies_download/1, older_paused_transfer_gets_its_turn/1,
         raw_at_in_password_is_refused/1, urls_libcurl_would_resolve_are_refused/1,
         name_too_long_for_an_atom_is_left_out/1, bad_timeouts_are_bad_args/1,
         index_above_2_63_is_polled/1, stopped_watch_leaves_no_query_behind/1,
         nomad_endless_pages_are_capped/1, nomad_pages_share_one_timeout/1,
         nomad_repeated_next_token_refused/1, nomad_watch_endless_pages_keep_listing/1,
         consul_members_are_capped/1, ambiguous_addresses_are_left_out/1,
         nomad_ambiguous_addresses_are_left_out/1]).
-export([reply_over_the_owners_limit_fails_alone/1, cli_reads_addresses_strictly/1]).
-export([pong_while_libcurl_loads/1, requests_made_during_a_real_load_all_succeed/1, requests_parked_during_the_load_all_fail/1,
         cancel_and_deadline_while_parked/1, exit_while_libcurl_loads/1]).
-export([loopback_never_uses_a_proxy/1, other_hosts_follow_the_environment/1,
         proxy_option_none_and_url/1, encoded_loopback_never_reaches_a_proxy/1]).

suite() ->
    [{timetrap, {minutes, 2}}, {ct_hooks, [caravan_test_app]}].

all() ->
    [{group, consul}, {group, watch}, {group, tls}, {group, nomad}, {group, resolver},
     {group, proxy}, {group, loader}].

groups() ->
    [{consul, [], [empty_service_address, tagged_addresses, passing_and_tag, acl_token,
                   escaped_strings, malformed_bodies, big_body_is_bounded, server_errors,
                   environment_defaults, cli_lookup, token_echoed_in_error_bodies,
                   strict_json, index_header_is_checked, one_bad_entry_is_dropped,
                   ipv4_shorthand_hosts, small_answer_behind_big_ones,
                   pongs_between_the_chunks_of_a_big_answer, pings_while_big_bodies_download, exit_while_big_bodies_download,
                   small_requests_while_big_bodies_download,
                   older_paused_transfer_gets_its_turn, raw_at_in_password_is_refused,
                   urls_libcurl_would_resolve_are_refused,
                   name_too_long_for_an_atom_is_left_out, bad_timeouts_are_bad_args,
                   refused_body_ends_the_download, big_answer_memory_is_bounded,
                   refused_last_piece_is_answered_at_once, consul_members_are_capped,
                   ambiguous_addresses_are_left_out,
                   reply_over_the_owners_limit_fails_alone, cli_reads_addresses_strictly]},
     {watch, [], [watch_registration_and_deregistration, wakeup_without_change,
                  index_above_2_63_is_polled, stopped_watch_leaves_no_query_behind,
                  check_turns_critical, index_goes_backwards, server_restarted_mid_watch,
                  watch_keeps_members_on_errors]},
     {tls, [], [https_with_test_ca, wrong_ca_fails, mutual_tls]},
     {nomad, [], [nomad_discover, nomad_pagination, nomad_token, nomad_unix_socket,
                  nomad_watch, nomad_long_next_token, nomad_endless_pages_are_capped,
                  nomad_pages_share_one_timeout, nomad_repeated_next_token_refused,
                  nomad_watch_endless_pages_keep_listing,
                  nomad_ambiguous_addresses_are_left_out]},
     {resolver, [], [blackholed_resolver, resolved_host_name]},
     {loader, [], [pong_while_libcurl_loads, requests_made_during_a_real_load_all_succeed, requests_parked_during_the_load_all_fail,
                   cancel_and_deadline_while_parked, exit_while_libcurl_loads]},
     {proxy, [], [loopback_never_uses_a_proxy, other_hosts_follow_the_environment,
                  proxy_option_none_and_url, encoded_loopback_never_reaches_a_proxy]}].

init_per_group(tls, Config) ->
    Files = caravan_test_tls:make(filename:join(?config(priv_dir, Config), "tls"),
                                  ["server", "client"]),
    Other = caravan_test_tls:make(filename:join(?config(priv_dir, Config), "other"), []),
    [{tls, Files}, {other_ca, maps:get(ca, Other)} | Config];
init_per_group(resolver, Config) ->
    case caravan_test_netns:setup(1) of
        {ok, Net} ->
            {_, ["netns", "exec", Ns | _]} = caravan_test_netns:exec(Net, 1),
            ok = blackhole(Ns),
            Etc = filename:join("/etc/netns", Ns),
            ok = filelib:ensure_path(Etc),
            %% `ip netns exec' bind-mounts these over /etc/resolv.conf and
            %% /etc/hosts for the program inside.
            ok = file:write_file(filename:join(Etc, "resolv.conf"),
                                 "nameserver " ++ ?BLACKHOLE ++ "\n"),
            ok = file:write_file(filename:join(Etc, "hosts"),
                                 "127.0.0.1 localhost\n" ++ caravan_test_netns:bind_address(Net) ++
                                     " consul.caravan.test\n"),
            [{net, Net}, {ns, Ns}, {ns_etc, Etc} | Config];
        {skip, Why} ->
            {skip, Why}
    end;
init_per_group(proxy, Config) ->
    %% The bridge's address, 198.18.0.1: a host that is not loopback.
    case caravan_test_netns:setup(1) of
        {ok, Net} -> [{net, Net} | Config];
        {skip, Why} -> {skip, Why}
    end;
init_per_group(loader, Config) ->
    case caravan_test_slow_libcurl:build(?config(priv_dir, Config)) of
        {ok, Dir} -> [{slow_libcurl_dir, Dir} | Config];
        Skip -> Skip
    end;
init_per_group(_, Config) ->
    Config.

end_per_group(resolver, Config) ->
    caravan_test_netns:teardown(?config(net, Config)),
    Etc = ?config(ns_etc, Config),
    [file:delete(filename:join(Etc, F)) || F <- ["resolv.conf", "hosts"]],
    file:del_dir(Etc),
    ok;
end_per_group(proxy, Config) ->
    caravan_test_netns:teardown(?config(net, Config));
end_per_group(_, _Config) ->
    ok.

init_per_testcase(Case, Config) when Case =:= nomad_unix_socket ->
    %% A unix socket path must fit in 108 bytes; priv_dir is far longer.
    Path = lists:flatten(io_lib:format("/tmp/caravan-test-~s-~b.sock",
                                       [os:getpid(), erlang:unique_integer([positive])])),
    [{server, caravan_test_nomad:start(#{transport => unix, path => Path})},
     {socket_path, Path} | Config];
init_per_testcase(resolved_host_name, Config) ->
    %% Listening on the bridge, where the namespace's /etc/hosts points.
    {ok, Ip} = inet:parse_address(caravan_test_netns:bind_address(?config(net, Config))),
    [{server, caravan_test_consul:start(#{ip => Ip})} | Config];
init_per_testcase(blackholed_resolver, Config) ->
    Config;
init_per_testcase(encoded_loopback_never_reaches_a_proxy, Config) ->
    [{server, caravan_test_consul:start(#{})},
     {proxies, [caravan_test_proxy:start(), caravan_test_proxy:start()]} | Config];
init_per_testcase(loopback_never_uses_a_proxy, Config) ->
    Path = lists:flatten(io_lib:format("/tmp/caravan-test-~s-~b.sock",
                                       [os:getpid(), erlang:unique_integer([positive])])),
    [{server, caravan_test_consul:start(#{})},
     {unix_server, caravan_test_nomad:start(#{transport => unix, path => Path})},
     {socket_path, Path}, {proxies, [caravan_test_proxy:start(), caravan_test_proxy:start()]}
     | Config];
init_per_testcase(Case, Config) when Case =:= other_hosts_follow_the_environment;
                                     Case =:= proxy_option_none_and_url ->
    {ok, Ip} = inet:parse_address(caravan_test_netns:bind_address(?config(net, Config))),
    [{server, caravan_test_consul:start(#{ip => Ip})},
     {proxies, [caravan_test_proxy:start(), caravan_test_proxy:start()]} | Config];
init_per_testcase(Case, Config) ->
    case atom_to_list(Case) of
        "nomad_" ++ _ -> [{server, caravan_test_nomad:start(#{})} | Config];
        _ when Case =:= https_with_test_ca; Case =:= wrong_ca_fails; Case =:= mutual_tls ->
            Config;
        _ -> [{server, caravan_test_consul:start(#{})} | Config]
    end.

end_per_testcase(Case, Config) when Case =:= loopback_never_uses_a_proxy;
                                    Case =:= encoded_loopback_never_reaches_a_proxy;
                                    Case =:= other_hosts_follow_the_environment;
                                    Case =:= proxy_option_none_and_url ->
    [caravan_test_proxy:stop(P) || P <- ?config(proxies, Config)],
    case ?config(unix_server, Config) of
        undefined -> ok;
        U -> catch caravan_test_catalog:stop_server(U)
    end,
    end_per_testcase(any, Config);
end_per_testcase(_Case, Config) ->
    case ?config(server, Config) of
        undefined -> ok;
        #{catalog := _} = S ->
            %% Either API's stop works: both are an HTTP server plus a catalog.
            catch caravan_test_catalog:stop_server(S)
    end,
    case ?config(socket_path, Config) of
        undefined -> ok;
        Path -> file:delete(Path)
    end,
    ok.

%%% helpers

catalog(Config) -> maps:get(catalog, ?config(server, Config)).
url(Config) -> caravan_test_catalog:url(?config(server, Config)).

reg(Config, Id, Address, Port) ->
    reg(Config, Id, Address, Port, #{}).
reg(Config, Id, Address, Port, Extra) ->
    caravan_test_catalog:register(catalog(Config), <<"app">>,
                                  maps:merge(#{id => Id, address => Address, port => Port}, Extra)).

consul(Config) -> consul(Config, #{}).
consul(Config, Extra) ->
    caravan:discover({consul, maps:merge(#{service => "app", basename => "app",
                                           url => url(Config)}, Extra)}).

nomad(Config) -> nomad(Config, #{}).
nomad(Config, Extra) ->
    caravan:discover({nomad, maps:merge(#{service => "app", basename => "app",
                                          url => caravan_test_catalog:url(?config(server, Config))},
                                        Extra)}).

%% The catalog's next answer is a JSON array of the 10,000 entries
%% Entry(1)..Entry(10000), and a program of the test's own (a raw port, no
%% owner) is there to ask for it: the body and the port.
-spec big_answer_and_program(list(), fun((pos_integer()) -> iodata())) -> {binary(), port()}.
big_answer_and_program(Config, Entry) ->
    Body = iolist_to_binary([$[, lists:join($,, [Entry(I) || I <- lists:seq(1, 10000)]), $]]),
    ok = caravan_test_catalog:set_fault(catalog(Config), {body, Body}),
    {ok, Program} = caravan_config:port_program(),
    {Body, open_port({spawn_executable, Program}, [{packet, 4}, binary])}.

%% The next watch event, or none within Ms.
next_event(Watch, Ms) ->
    receive {caravan_watch, Watch, Event} -> Event after Ms -> none end.

lookup_alive() ->
    {ok, P} = caravan_port:os_pid(caravan_lookup),
    P.

%%% consul

empty_service_address(Config) ->
    ok = reg(Config, <<"a">>, <<"">>, 4370, #{node_address => <<"10.0.0.7">>}),
    ok = reg(Config, <<"b">>, <<"10.0.0.8">>, 4371, #{node_address => <<"10.0.0.99">>}),
    ?assertEqual({ok, ['app-4370@10.0.0.7', 'app-4371@10.0.0.8']}, consul(Config)).

%% Service tagged addresses are {address, port} objects (lower-case keys in
%% Consul's docs; upper-case accepted too), node tagged addresses strings.
tagged_addresses(Config) ->
    ok = reg(Config, <<"a">>, <<"10.0.0.1">>, 4370,
             #{service_tagged => #{<<"lan_ipv4">> => #{<<"address">> => <<"198.18.0.1">>,
                                                       <<"port">> => 5001},
                                   <<"wan">> => #{<<"Address">> => <<"198.18.9.1">>,
                                                  <<"Port">> => 6001}}}),
    ok = reg(Config, <<"b">>, <<"10.0.0.2">>, 4371,
             #{node_tagged => #{<<"lan_ipv4">> => <<"198.18.0.2">>, <<"wan">> => <<"198.18.9.2">>}}),
    ?assertEqual({ok, ['app-4371@198.18.0.2', 'app-5001@198.18.0.1']},
                 consul(Config, #{tagged_address => "lan_ipv4"})),
    ?assertEqual({ok, ['app-4371@198.18.9.2', 'app-6001@198.18.9.1']},
                 consul(Config, #{tagged_address => "wan"})),
    ?assertEqual({ok, ['app-4370@10.0.0.1', 'app-4371@10.0.0.2']},
                 consul(Config, #{tagged_address => "lan_ipv6"})). % absent: the default

passing_and_tag(Config) ->
    ok = reg(Config, <<"a">>, <<"10.0.0.1">>, 4370, #{tags => [<<"blue">>]}),
    ok = reg(Config, <<"b">>, <<"10.0.0.2">>, 4370),
    ok = caravan_test_catalog:set_status(catalog(Config), <<"app">>, <<"b">>, critical),
    ?assertEqual({ok, ['app-4370@10.0.0.1']}, consul(Config)),
    ?assertEqual({ok, ['app-4370@10.0.0.1', 'app-4370@10.0.0.2']},
                 consul(Config, #{passing => false})),
    ?assertEqual({ok, ['app-4370@10.0.0.1']}, consul(Config, #{passing => false, tag => "blue"})),
    ?assertEqual({ok, []}, consul(Config, #{tag => "green"})).

acl_token(Config) ->
    ok = reg(Config, <<"a">>, <<"10.0.0.1">>, 4370),
    Secret = <<"b1gs3cr3t-0000-1111">>,
    ok = caravan_test_catalog:set_token(catalog(Config), Secret),
    {error, {forbidden, Detail}} = consul(Config),
    ?assertEqual(<<"HTTP 403: ACL not found">>, Detail),
    {error, {forbidden, Detail2}} = consul(Config, #{token => "wrong-token-value"}),
    ?assertEqual(nomatch, binary:match(Detail2, <<"wrong-token-value">>)),
    ?assertEqual({ok, ['app-4370@10.0.0.1']}, consul(Config, #{token => Secret})).

escaped_strings(Config) ->
    Body = <<"[{\"Node\":{\"Node\":\"n\\u00e9ud \\\"1\\\"\",\"Address\":\"10.0.0.1\"},"
             "\"Service\":{\"ID\":\"a\\\\b\\ud83d\\ude00\",\"Address\":\"\\u0031\\u0032\\u0037.0.0.9\","
             "\"Port\":4370},\"Checks\":[]}]">>,
    ok = caravan_test_catalog:set_fault(catalog(Config), {body, Body}),
    ?assertEqual({ok, ['app-4370@127.0.0.9']}, consul(Config)),
    {ok, #{members := [M]}} = caravan_consul:query(#{service => "app", url => url(Config)}, 0),
    ?assertEqual(#{address => <<"127.0.0.9">>, port => 4370,
                   node => <<"n", 16#c3, 16#a9, "ud \"1\"">>,
                   id => <<"a\\b", 16#f0, 16#9f, 16#98, 16#80>>}, M).

malformed_bodies(Config) ->
    Pid = lookup_alive(),
    Bodies = [<<"tru">>, <<"[{\"Node\":{}">>, <<"{}">>, <<"[1,2]">>,
              <<"[{\"Node\":{\"Address\":\"10.0.0.1\"},\"Service\":{\"Port\":70000}}]">>,
              <<"[{\"Node\":{\"Address\":\"10.0.0.1\"},\"Service\":{\"Port\":4370.5}}]">>,
              <<"[{\"Node\":{\"Address\":\"10.0.0.1\"},\"Service\":{}}]">>,
              <<"[{\"Node\":{\"Address\":\"a\\ud800\"},\"Service\":{\"Port\":1}}]">>,
              <<"[{\"Node\":{\"Address\":\"10.0.0.1\"},\"Service\":{\"Port\":tru}}]">>,
              <<"[] []">>, <<"">>, <<"\"just a string\"">>],
    [begin
         ok = caravan_test_catalog:set_fault(catalog(Config), {body, B}),
         ?assertMatch({error, {bad_answer, _}}, consul(Config), B)
     end || B <- Bodies],
    ?assertEqual(Pid, lookup_alive()).

%% A server (or a gateway in front of it) that quotes the request's ACL token
%% in its error body: the detail caravan returns holds no piece of it, where
%% ever it sits, cut in half by the 160-byte limit included (issue 10 item 6).
token_echoed_in_error_bodies(Config) ->
    Secret = <<"b1c7a2e0-5d8f-4c3b-9a61-2f0e8d7c6b5a">>,
    Pieces = [binary:part(Secret, I, 4) || I <- lists:seq(0, byte_size(Secret) - 4)],
    Codes = [{403, forbidden}, {401, forbidden}, {404, not_found}, {429, http_status},
             {500, server_error}, {503, server_error}],
    [begin
         ok = caravan_test_catalog:set_fault(catalog(Config), {echo_token, Code, At}),
         {error, {Reason, Detail}} = consul(Config, #{token => Secret}),
         [?assertEqual(nomatch, binary:match(Detail, P), {Code, At, Detail}) || P <- Pieces]
     end || {Code, Reason} <- Codes,
            At <- [0, 1, 50, 100, 123, 124, 125, 140, 150, 159, 160, 161, 200]],
    ok.

%% RFC 8259, strictly: each of these is {error, {bad_answer, _}} (issue 10
%% item 5), and an Address carrying \u0000 is not cut at the NUL.
strict_json(Config) ->
    Entry = <<"{\"Node\":{\"Address\":\"10.0.0.5\"},\"Service\":{\"Port\":4370}}">>,
    Bodies = [<<"[1 2]">>, <<"[1,,2]">>, <<"[,1]">>, <<"[1,]">>, <<"[", Entry/binary, ",]">>,
              <<"[{\"Node\":{\"Address\":\"10.0.0.5\",},\"Service\":{\"Port\":4370}}]">>,
              <<"[\"a\" \"b\"]">>, <<"[", Entry/binary, "]", 0, "garbage">>,
              <<"[", Entry/binary, 0, "]">>,
              <<"[{\"Node\":{\"Address\":\"10.0.0.5\\u0000evil\"},\"Service\":{\"Port\":4370}}]">>,
              <<"[{\"Node\":{\"Address\":\"10.0.0.5\", \"x\": [1 2]},\"Service\":{\"Port\":4370}}]">>],
    [begin
         ok = caravan_test_catalog:set_fault(catalog(Config), {body, B}),
         ?assertMatch({error, {bad_answer, _}}, consul(Config), B)
     end || B <- Bodies],
    ok = caravan_test_catalog:set_fault(catalog(Config), {body, <<"[", Entry/binary, "]">>}),
    ?assertEqual({ok, ['app-4370@10.0.0.5']}, consul(Config)).

%% X-Consul-Index is a uint64: -1, an overflow or junk are refused, not
%% wrapped into an index the watch would send back (issue 10 item 11).
index_header_is_checked(Config) ->
    Body = <<"[{\"Node\":{\"Address\":\"10.0.0.5\"},\"Service\":{\"Port\":4370}}]">>,
    Q = fun() -> caravan_consul:query(#{service => "app", url => url(Config)}, 0) end,
    [begin
         ok = caravan_test_catalog:set_fault(catalog(Config),
                                             {headers, [{<<"X-Consul-Index">>, I}], Body}),
         ?assertMatch({error, {bad_answer, _}}, Q(), I)
     end || I <- [<<"-1">>, <<"18446744073709551616">>, <<"99999999999999999999999">>,
                  <<"12abc">>, <<"+5">>]],
    ok = caravan_test_catalog:set_fault(catalog(Config),
                                        {headers, [{<<"X-Consul-Index">>, <<"18446744073709551615">>}],
                                         Body}),
    ?assertMatch({ok, #{index := 18446744073709551615}}, Q()).

%% One entry that cannot be used (an Address over 255 bytes, a port out of
%% range) is dropped and counted in info's entries_skipped; the rest of the
%% answer is kept (issue 10 item 11).
one_bad_entry_is_dropped(Config) ->
    Long = binary:copy(<<"a">>, 300),
    Body = <<"[{\"Node\":{\"Address\":\"10.0.0.1\"},\"Service\":{\"Port\":4370}},"
             "{\"Node\":{\"Address\":\"", Long/binary, "\"},\"Service\":{\"Port\":4371}},"
             "{\"Node\":{\"Address\":\"10.0.0.3\"},\"Service\":{\"Port\":70000}},"
             "{\"Node\":{\"Address\":\"10.0.0.4\"},\"Service\":{\"Port\":4374}}]">>,
    {ok, #{entries_skipped := Before}} = caravan_port:call(caravan_lookup, info, #{}, 1000),
    ok = caravan_test_catalog:set_fault(catalog(Config), {body, Body}),
    ?assertEqual({ok, ['app-4370@10.0.0.1', 'app-4374@10.0.0.4']}, consul(Config)),
    {ok, #{entries_skipped := After}} = caravan_port:call(caravan_lookup, info, #{}, 1000),
    ?assertEqual(2, After - Before),
    %% caravan:info() names the libcurl that served it (issue 13 item 9).
    #{lookup := {ok, #{libcurl := Curl}}} = caravan:info(),
    ct:log("libcurl: ~s", [Curl]),
    ?assertMatch(<<"libcurl.so.4: libcurl/", _/binary>>, Curl).

%% libcurl reads a host of 1 to 4 dot-separated numbers (decimal, 0-octal,
%% 0x-hex) as an IPv4 address, as inet_aton(3) does: 127.1 is 127.0.0.1. Such
%% a host is no name for c-ares (http_resolve.c), which answered nxdomain
%% for URLs libcurl alone had always reached.
ipv4_shorthand_hosts(Config) ->
    ok = reg(Config, <<"a">>, <<"10.0.0.7">>, 4370),
    "http://127.0.0.1:" ++ Port = url(Config),
    [?assertEqual({Host, {ok, ['app-4370@10.0.0.7']}},
                  {Host, consul(Config, #{url => "http://" ++ Host ++ ":" ++ Port})})
     || Host <- ["127.1", "127.0.1", "2130706433", "0x7f.1", "0177.0.0.1", "0x7f.0.0.1"]].

%% Big answers are read on the program's worker thread, one after another
%% (answer_worker.h). A small answer must not wait in that queue: a request
%% with timeout_ms 200 that waited for 7 big answers' reading (about 0.4 s)
%% was answered long after its deadline. Measured on a port of the
%% program's own, so that no Erlang decoding of the big replies counts.
small_answer_behind_big_ones(Config) ->
    Entry = <<"{\"Node\":{\"Address\":\"10.0.0.1\"},\"Service\":{\"Port\":4370}}">>,
    Big = iolist_to_binary([$[, lists:join($,, lists:duplicate(100000, Entry)), $]]),
    ok = caravan_test_catalog:set_fault(catalog(Config), {body, Big}),
    Small = caravan_test_consul:start(#{}),
    ok = caravan_test_catalog:register(maps:get(catalog, Small), <<"app">>,
                                       #{id => <<"a">>, address => <<"10.0.0.7">>, port => 4370}),
    {ok, Program} = caravan_config:port_program(),
    Port = open_port({spawn_executable, Program}, [{packet, 4}, binary]),
    Ask = fun(Id, Url, Timeout) ->
                  true = port_command(Port, term_to_binary(
                                              {Id, consul_health,
                                               #{url => list_to_binary(Url), service => <<"app">>,
                                                 timeout_ms => Timeout}}))
          end,
    try
        [Ask(Id, url(Config), 30000) || Id <- lists:seq(1, 8)],
        %% The first big reply: the others have arrived too (local server)
        %% and wait for the worker. Small requests one after another now,
        %% each with a 200 ms deadline.
        case caravan_test_port_reader:next(Port, 30000) of
            {ok, First} when byte_size(First) >= 4096 -> ok;
            _ -> ct:fail(no_big_answer)
        end,
        Asks = [begin
                    T0 = erlang:monotonic_time(millisecond),
                    Ask(100 + K, caravan_test_catalog:url(Small), 200),
                    {{ok, #{members := [_]}}, BigFirst} = small_reply(Port, 100 + K, 0),
                    timer:sleep(20), % pacing
                    {erlang:monotonic_time(millisecond) - T0 - 20, BigFirst}
                end || K <- lists:seq(1, 25)],
        MostBefore = lists:max([B || {_, B} <- Asks]),
        ct:log("small answers behind 8 big ones, ms: ~w; big answers that came in before "
               "each: ~w", [[T || {T, _} <- Asks], [B || {_, B} <- Asks]]),
        %% The order is the behaviour: small answers overtake the big ones
        %% queued for the worker, which come in one at a time between them
        %% (at most 2 before any small one, seen 0-2). Queued behind them,
        %% the first small answer came after 6 or 7, and {ok, ...} although
        %% late, so the answers alone do not tell. The times are logged,
        %% not bounded: the machine's load is not the program's (a planted
        %% queueing bug took 197 ms, under the old 200 ms bound).
        ?assert(MostBefore < 4, {small_answer_waited_for_big_ones, MostBefore})
    after
        port_close(Port),
        caravan_test_catalog:stop_server(Small)
    end.

%% Issue 23: a reply of megabytes goes out in chunks (docs/protocol.md), and
%% pongs go out between them. Pings are sent one after another while the
%% answer is on the pipe: some pongs must arrive with chunks of the answer
%% both before and after them. A reply sent as one packet, or pongs queued
%% behind all of its chunks, has none (the order is the behaviour, not a
%% time). The chunks come in order and joined are the whole answer.
pongs_between_the_chunks_of_a_big_answer(Config) ->
    Long = binary:copy(<<"n">>, 300),
    Entry = fun(I) ->
                    N = integer_to_binary(I),
                    [<<"{\"Node\":{\"Node\":\"">>, Long, N, <<"\",\"Address\":\"10.0.">>,
                     integer_to_binary(I div 256), $., integer_to_binary(I rem 256),
                     <<"\"},\"Service\":{\"ID\":\"">>, Long, N, <<"\",\"Port\":4370}}">>]
            end,
    {_Body, P} = big_answer_and_program(Config, Entry),
    try
        true = port_command(P, term_to_binary({1, consul_health,
                                               #{url => list_to_binary(url(Config)),
                                                 service => <<"app">>, timeout_ms => 30000}})),
        Log = chunks_and_pongs(P, 2, undefined, 0, [], 20000),
        Seqs = [Seq || {chunk, Seq, _} <- Log],
        ?assertEqual(lists:seq(0, length(Seqs) - 1), Seqs),
        {1, ok, #{members := Members}} =
            binary_to_term(iolist_to_binary([B || {chunk, _, B} <- Log])),
        ?assertEqual(10000, length(Members)),
        %% The pongs with a chunk on either side.
        Idx = lists:zip(lists:seq(1, length(Log)), Log),
        ChunkAt = [K || {K, {chunk, _, _}} <- Idx],
        {First, Last} = {lists:min(ChunkAt), lists:max(ChunkAt)},
        Between = length([K || {K, pong} <- Idx, K > First, K < Last]),
        ct:log("~b chunks; ~b pongs, ~b of them between two chunks",
               [length(Seqs), length([x || pong <- Log]), Between]),
        ?assert(length(Seqs) > 10),
        ?assert(Between > 0, {no_pong_between_chunks, Log =:= []})
    after
        port_close(P)
    end.

%% Pings one after another (ids from Id) until the answer to request 1 is
%% whole (or Left pings were sent): what came, in order, chunk | pong.
chunks_and_pongs(_P, _Id, Size, Got, Log, _Left) when Got =:= Size ->
    lists:reverse(Log);
chunks_and_pongs(_P, _Id, _Size, _Got, _Log, 0) ->
    error(answer_not_whole);
chunks_and_pongs(P, Id, Size, Got, Log, Left) ->
    true = port_command(P, term_to_binary({Id, ping, #{}})),
    {Size1, Got1, Log1} = take(P, Size, Got, Log, 1),
    chunks_and_pongs(P, Id + 1, Size1, Got1, Log1, Left - 1).

%% Whatever has come: waits Ms for the first message, not at all after it.
take(P, Size, Got, Log, Ms) ->
    receive
        {P, {data, D}} ->
            case binary_to_term(D) of
                {1, chunk, {Seq, S, B}} ->
                    take(P, S, Got + byte_size(B), [{chunk, Seq, B} | Log], 0);
                {1, Status, Result} ->
                    ct:fail({not_chunked, Status, byte_size(D), Result =:= x});
                {_, ok, pong} ->
                    take(P, Size, Got, [pong | Log], 0)
            end
    after Ms -> {Size, Got, Log}
    end.

%% Issue 10: 8 bodies of 22 MB arriving at once from a local server. libcurl
%% reads a readable socket until it would block, so one loop iteration took
%% 60-180 ms and a ping waited behind it (50-67 ms). With a receive budget
%% per iteration (http.c) every ping is answered within milliseconds.
pings_while_big_bodies_download(Config) ->
    P = big_downloads(Config, 8),
    try
        Lat = big_pings(P, 1000, 60, 0, []),
        Sorted = lists:sort([L || {L, _} <- Lat]),
        Big = lists:sum([B || {_, B} <- Lat]),
        ct:log("ping latencies (ms, big answers seen meanwhile): ~w~nsorted: ~w",
               [Lat, Sorted]),
        %% Meaningful only while the bodies still download: pings answered
        %% before the last big answer came in.
        {Seen, _} = lists:mapfoldl(fun({_, B}, C) -> {C + B, C + B} end, 0, Lat),
        During = length(lists:takewhile(fun(K) -> K < 8 end, Seen)),
        ct:log("~b big answers, ~b pings before the last", [Big, During]),
        ?assert(During >= 5, {too_few_pings_while_downloading, During}),
        %% Every download ends, each with the body whole: one entry is
        %% usable, the rest well-formed JSON but dropped, so a body cut or
        %% with a chunk lost or doubled by a pause is bad_answer.
        Answers = [receive {big_answer, T} -> T after 0 -> error(lost) end
                   || _ <- lists:seq(1, Big)]
            ++ [receive {P, {data, D}} -> binary_to_term(D)
                after 20000 -> error({big_answer_missing, Big})
                end || _ <- lists:seq(1, 8 - Big)],
        ct:log("the big answers: ~p", [Answers]),
        ?assertEqual([{Id, ok, [<<"10.0.0.7">>]} || Id <- lists:seq(1, 8)],
                     lists:sort([{Id, St, [A || #{address := A} <- maps:get(members, R)]}
                                 || {Id, St, R} <- Answers])),
        %% Goal p99 <= 10 ms; the bound leaves room for a loaded machine (the
        %% test VM itself serves the 176 MB, the loop reads it 64 KiB a turn)
        %% and the ASan build's slower copies: 22 ms seen at worst; without
        %% the budget 99-135 ms.
        %% Under ASan a ping once took 60 ms (every copy is instrumented):
        %% that run gets a wider bound, still under the 99-135 ms unbounded.
        Bound = case os:getenv("ASAN_OPTIONS") of false -> 45; _ -> 90 end,
        ?assert(lists:max(Sorted) < Bound, {max_ms, lists:max(Sorted)})
    after
        port_close(P)
    end.

%% A small request to another server while 8 big bodies download is served
%% as it arrives. Its connect, headers and body used to wait until the big
%% ones were done: the paused big transfers, resumed first in every loop
%% turn, spent the turn's body budget before the ready sockets were looked
%% at, and a spent budget skipped them all, so a connect that completes
%% costs no body byte waited too ("Connection timed out after 200 ms", "201
%% ms with 477 out of 477 bytes received" under ASan).
small_requests_while_big_bodies_download(Config) ->
    Small = caravan_test_consul:start(#{}),
    ok = caravan_test_catalog:register(maps:get(catalog, Small), <<"app">>,
                                       #{id => <<"a">>, address => <<"10.0.0.5">>, port => 4370}),
    Url = list_to_binary(caravan_test_catalog:url(Small)),
    P = big_downloads(Config, 8),
    try
        Asks = small_asks(P, Url, 1000, 30, []),
        ct:log("small requests (ms, answer, big answers seen meanwhile): ~p", [Asks]),
        {Seen, _} = lists:mapfoldl(fun({_, _, B}, C) -> {C + B, C + B} end, 0, Asks),
        During = lists:sublist(Asks, length(lists:takewhile(fun(K) -> K < 8 end, Seen))),
        ?assert(length(During) >= 3, {too_few_requests_while_downloading, length(During)}),
        [?assertMatch({_, {ok, #{members := [#{address := <<"10.0.0.5">>}]}}, _}, A)
         || A <- During],
        %% Each takes a few loop turns (connect, request, answer): the
        %% pings' bound, which is a turn's, doubled; under ASan a turn has
        %% taken 60 ms, so more room there. What tells the fix apart is
        %% the count above: before it, none came back while the big
        %% bodies downloaded (221 and 458 ms, then 2-3 ms each after).
        Bound = case asan() of true -> 500; false -> 90 end,
        ?assert(lists:max([Ms || {Ms, _, _} <- During]) < Bound, During)
    after
        port_close(P),
        caravan_test_catalog:stop_server(Small)
    end.

%% A blocking query older than 8 big downloads answers while they run: its
%% answer, paused when it came in a turn whose budget was spent, is resumed
%% within a few turns. The paused transfers used to be resumed newest first,
%% and the budget was spent before the older query's turn came, until all
%% but three of the big bodies had ended.
older_paused_transfer_gets_its_turn(Config) ->
    Small = caravan_test_consul:start(#{}),
    Cat = maps:get(catalog, Small),
    ok = caravan_test_catalog:register(Cat, <<"app">>, #{id => <<"a">>, address => <<"10.0.0.5">>,
                                                         port => 4370}),
    Url = list_to_binary(caravan_test_catalog:url(Small)),
    {ok, Program} = caravan_config:port_program(),
    P = open_port({spawn_executable, Program}, [{packet, 4}, binary]),
    Ask = fun(Id, Args) ->
                  true = port_command(P, term_to_binary(
                                           {Id, consul_health,
                                            Args#{url => Url, service => <<"app">>}}))
          end,
    try
        Ask(101, #{timeout_ms => 5000}),
        {{ok, #{index := Index}}, 0} = await(P, 101, 0),
        Ask(102, #{index => Index, wait_ms => 60000, timeout_ms => 70000}),
        big_requests(Config, P, 8),
        %% The bodies take 0.5-1 s to read; 100 ms in, the loop's budget is
        %% spent in every turn.
        timer:sleep(100),
        T0 = erlang:monotonic_time(microsecond),
        ok = caravan_test_catalog:register(Cat, <<"app">>, #{id => <<"b">>,
                                                             address => <<"10.0.0.6">>,
                                                             port => 4370}),
        {{ok, #{members := Members}}, Big} = await(P, 102, 0),
        Ms = (erlang:monotonic_time(microsecond) - T0) / 1000,
        ct:log("the blocking query answered ~.1f ms after the change, ~b big answers before",
               [Ms, Big]),
        ?assertEqual(2, length(Members)),
        %% Newest first, the four newest big bodies ended before it came.
        ?assert(Big =< 1, {big_answers_first, Big}),
        Bound = case asan() of true -> 500; false -> 90 end,
        ?assert(Ms < Bound, {ms, Ms, big_answers_before, Big})
    after
        port_close(P),
        caravan_test_catalog:stop_server(Small)
    end.

%% A password with a raw '@' (RFC 3986 wants %40) is refused, and nothing
%% of it shows in the error. Before, the part after its '@' was taken for
%% the host name: "cannot resolve s3cr@127.0.0.1: ..." carried it into
%% error terms and logs.
raw_at_in_password_is_refused(Config) ->
    ok = reg(Config, <<"a">>, <<"10.0.0.1">>, 4370),
    "http://" ++ HostPort = url(Config),
    Bad = ["http://user:pa@s3cr@" ++ HostPort, "https://user:pa@s3cr@" ++ HostPort ++ "/x",
           "http://pa@s3cr@" ++ HostPort],
    [begin
         Result = consul(Config, #{url => U}),
         ct:log("~s: ~p", [U, Result]),
         ?assertMatch({error, {bad_args, <<"url: its user info holds an '@'", _/binary>>}},
                      Result),
         ?assertEqual(nomatch, string:find(io_lib:format("~p", [Result]), "s3cr"))
     end || U <- Bad],
    %% Encoded, it is a password like any other (the test server ignores it).
    ?assertEqual({ok, ['app-4370@10.0.0.1']},
                 consul(Config, #{url => "http://user:pa%40s3cr@" ++ HostPort})),
    %% An '@' after the authority is the path's business.
    ?assertNotMatch({error, {bad_args, _}},
                    consul(Config, #{url => "http://" ++ HostPort ++ "/a@b@c"})),
    %% The CLI too (it printed "cannot resolve s3cr@...").
    {ok, Program} = caravan_config:port_program(),
    Out = os:cmd(Program ++ " lookup app --consul 'http://user:pa@s3cr@" ++ HostPort ++
                     "' 2>&1; echo rc=$?"),
    ct:log("CLI: ~s", [Out]),
    ?assertEqual(nomatch, string:find(Out, "s3cr")),
    ?assertNotEqual(nomatch, string:find(Out, "write it as %40")),
    ?assertNotEqual(nomatch, string:find(Out, "rc=1")).

%% A URL whose host the program would not see is refused: libcurl 7.88
%% reads http:///localhost:PORT as http://localhost:PORT, and a URL without
%% a scheme as http, and then resolves the name on a thread of its own,
%% outside every deadline (an attacker found it: answered {ok, _}, strace
%% showed libcurl's getaddrinfo thread). The CLI takes the same checks.
urls_libcurl_would_resolve_are_refused(Config) ->
    ok = reg(Config, <<"a">>, <<"10.0.0.1">>, 4370),
    "http://127.0.0.1:" ++ Port = url(Config),
    Long = lists:duplicate(256, $a),
    Refused = [{"http:///localhost:" ++ Port, "no host"},
               {"https:///localhost:" ++ Port, "no host"},
               {"http://:" ++ Port, "no host"},
               {"http://user@:" ++ Port, "no host"},
               {"http://?x", "no host"},
               {"http://" ++ Long ++ ":" ++ Port, "longer than 255"},
               {"localhost:" ++ Port, "must start with"},
               {"http://127.0.0.1:abc", "port must be"},
               {"http://127.0.0.1:99999", "port must be"},
               {"http://127.0.0.1:0", "port must be"},
               {"http://127.0.0.1:" ++ Port ++ "x", "port must be"},
               {"http://[::1", "closing ']'"},
               {"http://[::1]x", "followed by :PORT"}],
    {ok, Program} = caravan_config:port_program(),
    [begin
         Result = consul(Config, #{url => U}),
         ct:log("~s: ~p", [U, Result]),
         ?assertMatch({error, {bad_args, _}}, Result),
         {error, {bad_args, Detail}} = Result,
         ?assertNotEqual(nomatch, string:find(Detail, Why)),
         Out = os:cmd(Program ++ " lookup app --consul '" ++ U ++ "' 2>&1; echo rc=$?"),
         ?assertNotEqual(nomatch, string:find(Out, Why), Out)
     end || {U, Why} <- Refused],
    %% Names, IPv4 and IPv6 literals, user info: as before.
    [?assertEqual({ok, ['app-4370@10.0.0.1']}, consul(Config, #{url => U}))
     || U <- ["http://localhost:" ++ Port, "http://127.0.0.1:" ++ Port,
              "http://u:p@127.0.0.1:" ++ Port, "http://127.0.0.1:" ++ Port ++ "/"]].

%% An instance whose address (up to 255 bytes, which the program takes)
%% makes a node name over 255 characters cannot be an atom: it is left out,
%% the others listed, in a discover and in a watch. It used to raise
%% system_limit: one such registration hid every member and crashed the
%% watch at each answer (an attacker found it).
name_too_long_for_an_atom_is_left_out(Config) ->
    ok = reg(Config, <<"a">>, <<"10.0.0.1">>, 4370),
    ok = reg(Config, <<"long">>, list_to_binary(lists:duplicate(250, $a)), 4371),
    ?assertEqual({ok, ['app-4370@10.0.0.1']}, consul(Config)),
    W = start_watch(Config),
    ?assertEqual({members, ['app-4370@10.0.0.1']}, next_event(W, 2000)),
    caravan:unwatch(W).

%% timeout and wait that are not integers, or out of range, are the
%% caller's bad_args: "5000" used to raise badarith in the caller, and
%% 1 bsl 64 crashed the shared owner of the lookup program.
bad_timeouts_are_bad_args(Config) ->
    ok = reg(Config, <<"a">>, <<"10.0.0.1">>, 4370),
    Owner = whereis(caravan_lookup),
    [?assertMatch({error, {bad_args, <<"options: ", _/binary>>}}, consul(Config, Bad))
     || Bad <- [#{timeout => "5000"}, #{timeout => 0}, #{timeout => -1},
                #{timeout => 1 bsl 64}, #{wait => 1.5}, #{wait => -1}]],
    %% The option at fault is named, whichever it is.
    {error, {bad_args, Why}} = consul(Config, #{wait => 1 bsl 40}),
    ?assertNotEqual(nomatch, string:find(Why, "wait must be an integer")),
    ?assertEqual(Owner, whereis(caravan_lookup)),
    ?assertEqual({ok, ['app-4370@10.0.0.1']}, consul(Config)).

%% N small consul_health requests one after another, 10 ms apart:
%% [{latency ms, answer, big answers received meanwhile}].
small_asks(_P, _Url, _Id, 0, Acc) ->
    lists:reverse(Acc);
small_asks(P, Url, Id, N, Acc) ->
    T = erlang:monotonic_time(microsecond),
    true = port_command(P, term_to_binary({Id, consul_health,
                                           #{url => Url, service => <<"app">>,
                                             timeout_ms => 1000}})),
    {Answer, Big} = await(P, Id, 0),
    L = (erlang:monotonic_time(microsecond) - T) / 1000,
    timer:sleep(10),
    small_asks(P, Url, Id + 1, N - 1, [{round(L), Answer, Big} | Acc]).

%% Issue 10: stdin closes while 8 big bodies download: the program exits
%% within 100 ms (it took 104-186 ms: the iteration in progress had to end).
%% 16 bodies here: the test server is faster than Consul, which makes an
%% iteration shorter.
exit_while_big_bodies_download(Config) ->
    %% Three rounds, stdin closing at a different point of the downloads.
    Rounds = [exit_after(Config, Ms) || Ms <- [10, 30, 60]],
    ct:log("exit (us after stdin closed, answers in before): ~w", [Rounds]),
    ?assert(lists:all(fun({_, Answered}) -> Answered < 16 end, Rounds),
            all_answered_before_stdin_closed),
    %% The ASan build adds its leak check at exit (see blackholed_resolver).
    Bound = case asan() of true -> 1000000; false -> 100000 end,
    ?assert(lists:max([G || {G, _} <- Rounds]) < Bound, Rounds).

exit_after(Config, Ms) ->
    P = big_downloads(Config, 16),
    {os_pid, Pid} = erlang:port_info(P, os_pid),
    %% A ping's answer comes after the requests were read.
    [{_, 0}] = big_pings(P, 2000, 1, 0, []),
    timer:sleep(Ms),
    T1 = erlang:monotonic_time(microsecond),
    port_close(P),
    Gone = gone(Pid, T1, 10000),
    {Gone, big_answers(P, 0)}.

big_answers(P, N) ->
    receive {P, {data, _}} -> big_answers(P, N + 1)
    after 0 -> N
    end.

%% A program of its own with N consul_health requests for 22 MB bodies out.
big_downloads(Config, N) ->
    {ok, Program} = caravan_config:port_program(),
    P = open_port({spawn_executable, Program}, [{packet, 4}, binary]),
    big_requests(Config, P, N).

%% N consul_health requests (ids 1..N) for 22 MB bodies, sent to P.
big_requests(Config, P, N) ->
    %% A node address that is no string: valid JSON, an entry dropped.
    Entry = <<"{\"Node\":{\"Address\":1},\"Service\":{\"Port\":4370}}">>,
    Good = <<"{\"Node\":{\"Address\":\"10.0.0.7\"},\"Service\":{\"Port\":4370}}">>,
    Body = iolist_to_binary([$[, lists:join($,, [Good | lists:duplicate(22 * 1024 * 1024 div
                                                                 (byte_size(Entry) + 1),
                                                                 Entry)]), $]]),
    ok = caravan_test_catalog:set_fault(catalog(Config), {body, Body}),
    [true = port_command(P, term_to_binary({Id, consul_health,
                                            #{url => list_to_binary(url(Config)),
                                              service => <<"app">>, timeout_ms => 30000}}))
     || Id <- lists:seq(1, N)],
    P.

%% N pings 10 ms apart: [{latency ms, big answers received meanwhile}].
big_pings(_P, _Id, 0, _Big, Acc) ->
    lists:reverse(Acc);
big_pings(P, Id, N, _, Acc) ->
    T = erlang:monotonic_time(microsecond),
    true = port_command(P, term_to_binary({Id, ping, #{}})),
    {{ok, pong}, Big} = await(P, Id, 0),
    L = (erlang:monotonic_time(microsecond) - T) / 1000,
    timer:sleep(10),
    big_pings(P, Id + 1, N - 1, 0, [{round(L), Big} | Acc]).

%% Waits for Id's answer: {{Status, Result}, how many other answers came
%% first}; it sends those to self() as {big_answer, Term}.
await(P, Id, Others) ->
    receive
        {P, {data, D}} ->
            case binary_to_term(D) of
                {Id, Status, Result} -> {{Status, Result}, Others};
                Other -> self() ! {big_answer, Other}, await(P, Id, Others + 1)
            end
    after 10000 -> error({no_answer, Id})
    end.

%% The reply to Id, skipping the big ones unread (each joined from its
%% chunks first: one big answer counts once).
small_reply(Port, Id, Big) ->
    case caravan_test_port_reader:next(Port, 10000) of
        {ok, D} when byte_size(D) < 4096 ->
            case binary_to_term(D) of
                {Id, ok, R} -> {{ok, R}, Big};
                {Id, error, E} -> {{error, E}, Big};
                _ -> small_reply(Port, Id, Big)
            end;
        {ok, _} ->
            small_reply(Port, Id, Big + 1);
        timeout ->
            timeout
    end.

big_body_is_bounded(Config) ->
    Pid = lookup_alive(),
    ok = caravan_test_catalog:set_fault(catalog(Config), {big, 50 * 1024 * 1024}),
    {error, {too_large, Detail}} = consul(Config),
    ct:log("50 MB body: ~s", [Detail]),
    {ok, Info} = caravan_port:call(caravan_lookup, info, #{}, 1000),
    ?assertEqual(Pid, maps:get(os_pid, Info)),
    {ok, Status} = file:read_file("/proc/" ++ integer_to_list(Pid) ++ "/status"),
    {match, [Rss]} = re:run(Status, "VmRSS:\\s+([0-9]+)", [{capture, all_but_first, list}]),
    ct:log("caravan_port RSS after the 50 MB body: ~s KiB", [Rss]),
    %% The body is cut at 32 MiB. Under ASan, RSS counts shadow memory and
    %% the allocator's quarantine of freed blocks (256 MiB by default), so no
    %% bound on it says anything about the program: the check is skipped
    %% there, and says so.
    case os:getenv("ASAN_OPTIONS") of
        false ->
            ?assert(list_to_integer(Rss) < 80 * 1024);
        _ ->
            {skip, "ASan build: VmRSS includes shadow memory and ASan's quarantine "
                   "of freed blocks, so the RSS bound is checked in the release run only"}
    end.

%% The body is read as it arrives: a fault in its first bytes is answered
%% at once, and the download stops there. Read whole, the answer waited for
%% the server's stall (5 s here) and then said connection_closed.
refused_body_ends_the_download(Config) ->
    Entry = <<"{\"Node\":{\"Address\":\"10.0.0.5\"},\"Service\":{\"Port\":4370}}">>,
    [begin
         ok = caravan_test_catalog:set_fault(catalog(Config), {body_then_stall, B, 5000}),
         T0 = erlang:monotonic_time(millisecond),
         ?assertMatch({error, {bad_answer, _}}, consul(Config, #{timeout => 8000}), B),
         Took = erlang:monotonic_time(millisecond) - T0,
         ct:log("~p refused after ~b ms", [B, Took]),
         ?assert(Took < 2000, {took_ms, Took})
     end || B <- [<<"[", Entry/binary, " ", Entry/binary>>, <<"{\"a\":">>,
                  iolist_to_binary(["[", lists:duplicate(100, "["), "1"])]].

%% Issue 10: the program's peak RSS after a 10,000-instance Consul answer
%% (5 MB) is at most twice the body plus 4 MiB. It was 17.2 MiB against
%% 13.9 while the body was held whole; read as it arrives, 12 MiB (of
%% which 9 are the pages of libcurl and its libraries). A fresh program, so
%% that its high-water mark is this answer's.
big_answer_memory_is_bounded(Config) ->
    Entry = fun(I) ->
                    N = integer_to_binary(I),
                    A = iolist_to_binary(io_lib:format("10.~b.~b.~b", [I bsr 16, (I bsr 8) band 255,
                                                                      I band 255])),
                    [<<"{\"Node\":{\"ID\":\"0b7c2ac3-1e2a-4f5c-9d4e-">>, N,
                     <<"\",\"Node\":\"node-">>, N, <<"\",\"Address\":\"">>, A,
                     <<"\",\"TaggedAddresses\":{\"lan\":\"">>, A,
                     <<"\",\"wan\":\"">>, A, <<"\"},"
                       "\"CreateIndex\":5,\"ModifyIndex\":5},\"Service\":{\"ID\":\"app-">>, N,
                     <<"\",\"Service\":\"app\",\"Tags\":[\"erlang\"],\"Address\":\"">>, A,
                     <<"\",\"Meta\":null,\"Port\":4370,"
                       "\"EnableTagOverride\":false,\"CreateIndex\":5,\"ModifyIndex\":5},"
                       "\"Checks\":[{\"Node\":\"node-">>, N,
                     <<"\",\"CheckID\":\"serfHealth\",\"Name\":\"Serf Health Status\","
                       "\"Status\":\"passing\",\"Output\":\"Agent alive and "
                       "reachable\",\"ServiceID\":\"\",\"ServiceName\":\"\","
                       "\"CreateIndex\":5,\"ModifyIndex\":5}]}">>]
            end,
    {Body, P} = big_answer_and_program(Config, Entry),
    try
        {os_pid, Pid} = erlang:port_info(P, os_pid),
        true = port_command(P, term_to_binary({1, consul_health,
                                               #{url => list_to_binary(url(Config)),
                                                 service => <<"app">>}})),
        {ok, #{members := Members}} = case caravan_test_port_reader:next(P, 30000) of
                                          {ok, D} -> {1, ok, R} = binary_to_term(D), {ok, R};
                                          timeout -> error(no_answer)
                                      end,
        10000 = length(Members),
        {ok, Status} = file:read_file("/proc/" ++ integer_to_list(Pid) ++ "/status"),
        {match, [Hwm]} = re:run(Status, "VmHWM:\\s+([0-9]+)", [{capture, all_but_first, list}]),
        Goal = 2 * byte_size(Body) div 1024 + 4096,
        ct:log("body ~b KiB; peak RSS ~s KiB; goal ~b KiB", [byte_size(Body) div 1024, Hwm, Goal]),
        case asan() of
            false ->
                ?assert(list_to_integer(Hwm) =< Goal, {peak_rss_kib, Hwm, Goal});
            true ->
                {skip, "ASan build: VmRSS includes shadow memory and ASan's quarantine "
                       "of freed blocks, so the RSS bound is checked in the release run only"}
        end
    after
        port_close(P)
    end.

%% A body over the loop's per-turn budget (64 KiB) is read over several
%% turns: the chunk that exceeds it is paused and handed over again at the
%% next turn, inside curl_easy_pause. When that chunk is the body's last and
%% is refused there (its grammar breaks, or it goes over max_bytes),
%% libcurl only returns the error from curl_easy_pause: the transfer was
%% left waiting for a timer (3 s here) and then ended "OK" without the
%% chunk, so a too large body was answered bad_answer. Sizes around a few
%% budgets, since where the pause falls depends on how reads are cut.
refused_last_piece_is_answered_at_once(Config) ->
    Entry = <<"{\"Node\":{\"Address\":\"10.0.0.5\",\"Node\":\"n\"},"
              "\"Service\":{\"Port\":4370,\"ID\":\"x\"}}">>,
    Valid = fun(N) ->
                    K = max(1, (N - 2) div (byte_size(Entry) + 1)),
                    iolist_to_binary([$[, lists:join($,, lists:duplicate(K, Entry)), $]])
            end,
    {ok, Program} = caravan_config:port_program(),
    P = open_port({spawn_executable, Program}, [{packet, 4}, binary]),
    Ask = fun(Id, Body, Max) ->
                  ok = caravan_test_catalog:set_fault(catalog(Config), {body, Body}),
                  T0 = erlang:monotonic_time(millisecond),
                  true = port_command(P, term_to_binary({Id, consul_health,
                                                         #{url => list_to_binary(url(Config)),
                                                           service => <<"app">>,
                                                           timeout_ms => 8000,
                                                           max_bytes => Max}})),
                  receive
                      {P, {data, D}} ->
                          {Id, error, {Reason, _}} = binary_to_term(D),
                          {Reason, erlang:monotonic_time(millisecond) - T0}
                  after 10000 -> error(no_answer)
                  end
          end,
    try
        [begin
             V = Valid(N),
             {bad_answer, Took} = Ask(2 * N, <<V/binary, "x">>, 32 * 1024 * 1024),
             Padded = <<V/binary, (binary:copy(<<" ">>, N))/binary>>,
             {too_large, Took2} = Ask(2 * N + 1, Padded, byte_size(Padded) - 10),
             ct:log("~b bytes: refused in ~b ms, too large in ~b ms", [N, Took, Took2]),
             ?assert(Took < 1000, {N, refused_after_ms, Took}),
             ?assert(Took2 < 1000, {N, too_large_after_ms, Took2})
         end || N <- lists:seq(70000, 160000, 6000)]
    after
        port_close(P)
    end.

server_errors(Config) ->
    C = catalog(Config),
    ok = caravan_test_catalog:set_fault(C, {status, 500, <<"rpc error: No cluster leader">>}),
    ?assertEqual({error, {server_error, <<"HTTP 500: rpc error: No cluster leader">>}},
                 consul(Config)),
    ok = caravan_test_catalog:set_fault(C, close),
    ?assertMatch({error, {connection_closed, _}}, consul(Config)),
    ok = caravan_test_catalog:set_fault(C, {stall, 3000}),
    T0 = erlang:monotonic_time(millisecond),
    ?assertMatch({error, {timeout, _}}, consul(Config, #{timeout => 300})),
    ?assert(erlang:monotonic_time(millisecond) - T0 < 1500),
    ?assertMatch({error, {connection_refused, _}},
                 consul(Config, #{url => "http://127.0.0.1:1"})),
    %% An error page larger than max_bytes keeps its status: only its start
    %% is kept for the detail (it was answered too_large, the 500 lost).
    ok = caravan_test_catalog:set_fault(C, {status, 500, [<<"overloaded\n">>,
                                                          binary:copy(<<"x">>, 34 * 1024 * 1024)]}),
    ?assertEqual({error, {server_error, <<"HTTP 500: overloaded">>}}, consul(Config)),
    ok = caravan_test_catalog:set_fault(C, none).

environment_defaults(Config) ->
    ok = reg(Config, <<"a">>, <<"10.0.0.1">>, 4370),
    ok = caravan_test_catalog:set_token(catalog(Config), <<"env-token">>),
    "http://" ++ HostPort = url(Config),
    Saved = [{V, os:getenv(V)} || V <- ["CONSUL_HTTP_ADDR", "CONSUL_HTTP_TOKEN"]],
    try
        os:putenv("CONSUL_HTTP_ADDR", HostPort),   % no scheme, as Consul's CLI accepts
        os:putenv("CONSUL_HTTP_TOKEN", "env-token"),
        ?assertEqual({ok, ['app-4370@10.0.0.1']},
                     caravan:discover({consul, #{service => "app", basename => "app"}}))
    after
        [case V of false -> os:unsetenv(K); _ -> os:putenv(K, V) end || {K, V} <- Saved]
    end.

cli_lookup(Config) ->
    ok = reg(Config, <<"a">>, <<"10.0.0.1">>, 4370),
    ok = reg(Config, <<"b">>, <<"10.0.0.2">>, 4371),
    {ok, Program} = caravan_config:port_program(),
    Out = os:cmd(Program ++ " lookup app --consul " ++ url(Config) ++ " 2>&1; echo rc=$?"),
    ?assertEqual(["app-4370@10.0.0.1", "app-4371@10.0.0.2", "rc=0"],
                 string:split(string:trim(Out), "\n", all)),
    ok = caravan_test_catalog:set_token(catalog(Config), <<"t0k">>),
    Denied = os:cmd(Program ++ " lookup app --consul " ++ url(Config) ++ " 2>&1; echo rc=$?"),
    ?assertNotEqual(nomatch, string:find(Denied, "HTTP 403")),
    ?assertNotEqual(nomatch, string:find(Denied, "rc=1")),
    Env = "CONSUL_HTTP_TOKEN=t0k ",
    ?assertNotEqual(nomatch, string:find(os:cmd(Env ++ Program ++ " lookup app --consul " ++
                                                    url(Config)), "app-4371@10.0.0.2")),
    %% An error page that quotes the token: the CLI prints the port's
    %% detail, token masked, as the port does (it printed the raw body).
    ok = caravan_test_catalog:set_fault(catalog(Config), {echo_token, 403, 5}),
    Echoed = os:cmd(Env ++ Program ++ " lookup app --consul " ++ url(Config) ++ " 2>&1; echo rc=$?"),
    ct:log("~s", [Echoed]),
    ?assertNotEqual(nomatch, string:find(Echoed, "HTTP 403")),
    ?assertEqual(nomatch, string:find(Echoed, "t0k")),
    ok = caravan_test_catalog:set_fault(catalog(Config), none).

%%% watch

start_watch(Config) ->
    start_watch(Config, 5000).

start_watch(Config, WaitMs) ->
    {ok, W} = caravan:watch({consul, #{service => "app", basename => "app", url => url(Config),
                                       wait => WaitMs}}, self()),
    W.

watch_registration_and_deregistration(Config) ->
    ok = reg(Config, <<"a">>, <<"10.0.0.1">>, 4370),
    W = start_watch(Config),
    ?assertEqual({members, ['app-4370@10.0.0.1']}, next_event(W, 2000)),
    T0 = erlang:monotonic_time(millisecond),
    ok = reg(Config, <<"b">>, <<"10.0.0.2">>, 4371),
    ?assertEqual({members, ['app-4370@10.0.0.1', 'app-4371@10.0.0.2']}, next_event(W, 1000)),
    ct:log("registration seen after ~b ms", [erlang:monotonic_time(millisecond) - T0]),
    ok = caravan_test_catalog:deregister(catalog(Config), <<"app">>, <<"a">>),
    ?assertEqual({members, ['app-4371@10.0.0.2']}, next_event(W, 1000)),
    caravan:unwatch(W).

wakeup_without_change(Config) ->
    ok = reg(Config, <<"a">>, <<"10.0.0.1">>, 4370),
    W = start_watch(Config),
    {members, _} = next_event(W, 2000),
    Before = caravan_test_catalog:served(catalog(Config)),
    [ok = caravan_test_catalog:touch(catalog(Config)) || _ <- lists:seq(1, 5)],
    ?assertEqual(none, next_event(W, 700)),
    %% The wakeups really happened (the watch asked again each time).
    ?assert(caravan_test_catalog:served(catalog(Config)) > Before),
    caravan:unwatch(W).

check_turns_critical(Config) ->
    ok = reg(Config, <<"a">>, <<"10.0.0.1">>, 4370),
    ok = reg(Config, <<"b">>, <<"10.0.0.2">>, 4371),
    W = start_watch(Config),
    {members, [_, _]} = next_event(W, 2000),
    ok = caravan_test_catalog:set_status(catalog(Config), <<"app">>, <<"a">>, critical),
    ?assertEqual({members, ['app-4371@10.0.0.2']}, next_event(W, 1000)),
    caravan:unwatch(W).

index_goes_backwards(Config) ->
    C = catalog(Config),
    [ok = reg(Config, integer_to_binary(I), <<"10.0.0.1">>, 4000 + I) || I <- lists:seq(1, 5)],
    %% A 2 s wait (not 5 s): the old query is still held for the 300 ms
    %% below, and the change comes when it runs out, 3 s sooner.
    W = start_watch(Config, 2000),
    {members, [_, _, _, _, _]} = next_event(W, 2000),
    ok = caravan_test_catalog:set_index(C, 2), % e.g. a snapshot restore
    ?assertEqual(none, next_event(W, 300)),
    %% With the index reset the watch still blocks and sees the next change.
    ok = caravan_test_catalog:deregister(C, <<"app">>, <<"1">>),
    %% Like Consul, the catalog holds the query sent with the old, higher
    %% index until its wait (2 s) runs out; the lower index it then answers
    %% with makes the watch start over from 0 and see the change.
    {members, Four} = next_event(W, 8000),
    ?assertEqual(4, length(Four)),
    Served = caravan_test_catalog:served(C),
    timer:sleep(500),
    ?assert(caravan_test_catalog:served(C) - Served =< 2), % blocking, not spinning
    caravan:unwatch(W).

%% An X-Consul-Index at or above 2^63 (Consul documents an unsigned 64-bit
%% one) cannot be sent back: the watch polls without blocking, once a
%% second, and sees changes. It used to send it back, be refused (bad_args)
%% at every query, and never see a change again (an attacker found it).
index_above_2_63_is_polled(Config) ->
    C = catalog(Config),
    ok = reg(Config, <<"a">>, <<"10.0.0.1">>, 4370),
    ok = caravan_test_catalog:set_index(C, (1 bsl 63) + 5),
    W = start_watch(Config),
    ?assertEqual({members, ['app-4370@10.0.0.1']}, next_event(W, 2000)),
    ok = reg(Config, <<"b">>, <<"10.0.0.2">>, 4371),
    ?assertEqual({members, ['app-4370@10.0.0.1', 'app-4371@10.0.0.2']}, next_event(W, 3000)),
    Served = caravan_test_catalog:served(C),
    timer:sleep(1500),
    ?assert(caravan_test_catalog:served(C) - Served =< 3), % polling, not spinning
    caravan:unwatch(W).

%% caravan:unwatch/1 ends the helper running the watch's blocking query.
%% It used to wait the query out (up to the wait, a minute by default):
%% 200 watches stopped left 200 processes behind, each holding a call.
stopped_watch_leaves_no_query_behind(Config) ->
    ok = reg(Config, <<"a">>, <<"10.0.0.1">>, 4370),
    W = start_watch(Config),
    {members, _} = next_event(W, 2000),
    %% The next query, a blocking one, has reached the server.
    caravan_test_peer:wait_until(
      fun() -> length(caravan_test_catalog:requests(catalog(Config))) >= 2 end, 5000),
    {links, Links} = process_info(W, links),
    [Worker] = [P || P <- Links, is_pid(P), P =/= whereis(caravan_watch_sup)],
    Ref = monitor(process, Worker),
    caravan:unwatch(W),
    receive {'DOWN', Ref, process, Worker, _} -> ok
    after 1000 -> ct:fail(helper_outlived_its_watch)
    end.

server_restarted_mid_watch(Config) ->
    #{http := Http} = Server = ?config(server, Config),
    ok = reg(Config, <<"a">>, <<"10.0.0.1">>, 4370),
    W = start_watch(Config),
    {members, ['app-4370@10.0.0.1']} = next_event(W, 2000),
    #{where := Port} = Http,
    caravan_test_http:stop(Http),
    %% The blocked query's connection is closed under it; the retries that
    %% follow find nothing listening (docs/protocol.md, HTTP errors).
    {error, {Why, _}} = next_event(W, 3000),
    ?assert(lists:member(Why, [connection_closed, connection_refused]), Why),
    C = catalog(Config),
    Http2 = caravan_test_http:start(fun(Req) -> test_consul_handle(C, Req) end, #{port => Port}),
    ok = reg(Config, <<"b">>, <<"10.0.0.2">>, 4371),
    ?assertEqual({members, ['app-4370@10.0.0.1', 'app-4371@10.0.0.2']}, next_event(W, 5000)),
    caravan:unwatch(W),
    caravan_test_http:stop(Http2),
    _ = Server.

test_consul_handle(C, Req) ->
    caravan_test_consul:handle(C, Req).

watch_keeps_members_on_errors(Config) ->
    C = catalog(Config),
    ok = reg(Config, <<"a">>, <<"10.0.0.1">>, 4370),
    W = start_watch(Config),
    {members, ['app-4370@10.0.0.1']} = next_event(W, 2000),
    ok = caravan_test_catalog:set_fault(C, {status, 503, <<"overloaded">>}),
    ok = caravan_test_catalog:touch(C), % wake the blocked query into the fault
    ?assertMatch({error, {server_error, _}}, next_event(W, 2000)),
    ?assertEqual(none, next_event(W, 1000)), % one event per distinct error
    ok = caravan_test_catalog:set_fault(C, none),
    ok = reg(Config, <<"b">>, <<"10.0.0.2">>, 4371),
    ?assertEqual({members, ['app-4370@10.0.0.1', 'app-4371@10.0.0.2']}, next_event(W, 20000)),
    caravan:unwatch(W).

%%% tls

tls_server(Config, Extra) ->
    Files = ?config(tls, Config),
    Ssl = [{certfile, maps:get({cert, "server"}, Files)},
           {keyfile, maps:get({key, "server"}, Files)},
           {cacertfile, maps:get(ca, Files)}] ++ Extra,
    S = caravan_test_consul:start(#{transport => ssl, ssl => Ssl}),
    ok = caravan_test_catalog:register(maps:get(catalog, S), <<"app">>,
                                       #{id => <<"a">>, address => <<"10.0.0.1">>, port => 4370}),
    S.

https_with_test_ca(Config) ->
    S = tls_server(Config, []),
    Files = ?config(tls, Config),
    ?assertEqual({ok, ['app-4370@10.0.0.1']},
                 caravan:discover({consul, #{service => "app", basename => "app",
                                             url => caravan_test_catalog:url(S),
                                             ca_file => maps:get(ca, Files)}})),
    caravan_test_catalog:stop_server(S).

wrong_ca_fails(Config) ->
    S = tls_server(Config, []),
    Base = #{service => "app", basename => "app", url => caravan_test_catalog:url(S)},
    %% Verification is on by default: the system store does not know the test CA.
    ?assertMatch({error, {tls_error, _}}, caravan:discover({consul, Base})),
    ?assertMatch({error, {tls_error, _}},
                 caravan:discover({consul, Base#{ca_file => ?config(other_ca, Config)}})),
    caravan_test_catalog:stop_server(S).

mutual_tls(Config) ->
    S = tls_server(Config, [{verify, verify_peer}, {fail_if_no_peer_cert, true}]),
    Files = ?config(tls, Config),
    Base = #{service => "app", basename => "app", url => caravan_test_catalog:url(S),
             ca_file => maps:get(ca, Files)},
    %% The server refuses the handshake without a client certificate.
    {error, {Why, Detail}} = caravan:discover({consul, Base}),
    ct:log("without a client certificate: ~p ~s", [Why, Detail]),
    ?assertEqual(tls_error, Why),
    ?assertEqual({ok, ['app-4370@10.0.0.1']},
                 caravan:discover({consul, Base#{cert_file => maps:get({cert, "client"}, Files),
                                                 key_file => maps:get({key, "client"}, Files)}})),
    caravan_test_catalog:stop_server(S).

%%% resolver: URLs by host name, in a namespace with its own resolv.conf

%% The namespace's DNS server (see ?BLACKHOLE).
blackhole(Ns) ->
    Tag = lists:last(string:split(Ns, "-", all)) ++ integer_to_list(erlang:phash2(Ns, 1000)),
    A = "cvba" ++ Tag, B = "cvbb" ++ Tag,
    Cmds = [["link", "add", A, "type", "veth", "peer", "name", B],
            ["addr", "add", "198.18.78.1/24", "dev", A],
            ["link", "set", A, "up"], ["link", "set", B, "up"],
            ["neigh", "add", ?BLACKHOLE, "lladdr", "02:00:00:00:00:99", "dev", A, "nud",
             "permanent"]],
    [{ok, _} = ip(["-n", Ns | C]) || C <- Cmds],
    ok.

ip(Args) ->
    P = open_port({spawn_executable, "/usr/sbin/ip"},
                  [{args, Args}, exit_status, stderr_to_stdout, binary]),
    receive_exit(P, <<>>).

receive_exit(P, Acc) ->
    receive
        {P, {data, D}} -> receive_exit(P, <<Acc/binary, D/binary>>);
        {P, {exit_status, 0}} -> {ok, Acc};
        {P, {exit_status, S}} -> {error, S, Acc}
    after 10000 -> {error, timeout, Acc}
    end.

%% The C program inside the namespace, spoken to directly: the test needs
%% its os pid and the moment its stdin closes.
ns_program(Config) ->
    {ok, Program} = caravan_config:port_program(),
    open_port({spawn_executable, "/usr/sbin/ip"},
              [{args, ["netns", "exec", ?config(ns, Config), Program]}, {packet, 4}, binary,
               exit_status]).

ns_call(P, Id, Op, Args) ->
    true = port_command(P, term_to_binary({Id, Op, Args})).

asan() -> os:getenv("ASAN_OPTIONS") =/= false.

%% Issue 10 item 3. Behind a resolver that never answers, a 500 ms request
%% is answered by its deadline, pings sent meanwhile are answered at once,
%% and the program exits within 100 ms of its stdin closing with a lookup
%% still in flight. (libcurl's threaded resolver took 8 s, froze pings and
%% made exit wait 7.7 s.)
blackholed_resolver(Config) ->
    P = ns_program(Config),
    {os_pid, Pid} = erlang:port_info(P, os_pid),
    T0 = erlang:monotonic_time(millisecond),
    ns_call(P, 1, consul_health, #{url => <<"http://consul.nowhere.caravan.test:8500">>,
                                   service => <<"app">>, timeout_ms => 500}),
    Pongs = pings(P, 100, 60, []),
    {{1, error, {timeout, Detail}}, At} = wait_id_at(P, 1, T0, 5000),
    Took = At - T0,
    Lat = [L || {L, _} <- Pongs],
    Sorted = lists:sort(Lat),
    P99 = lists:nth(max(1, (length(Sorted) * 99) div 100), Sorted),
    %% Pings answered while the lookup was still in flight: one after the
    %% other, each sent when the last came back. A loop frozen in the
    %% resolver answers none of them before the lookup's own answer.
    During = length([x || {_, PongAt} <- Pongs, PongAt < At]),
    ct:log("answered after ~b ms: ~s; ~b pings answered meanwhile; ping latencies (ms) ~w, "
           "p99 ~b", [Took, Detail, During, Lat, P99]),
    ?assert(Took < 500 + 400, Took),
    ?assert(During >= 5, {pings_answered_during_the_lookup, During}),
    %% Two more lookups in flight (one a blocking query), then stdin closes.
    ns_call(P, 2, consul_health, #{url => <<"http://consul.nowhere.caravan.test:8500">>,
                                   service => <<"app">>, timeout_ms => 60000}),
    ns_call(P, 3, nomad_services, #{url => <<"https://nomad.nowhere.caravan.test:4646">>,
                                    service => <<"app">>, index => 5, wait_ms => 600000}),
    {_, ok, pong} = (fun() -> ns_call(P, 4, ping, #{}), wait_id(P, 4, T0, 2000) end)(),
    T1 = erlang:monotonic_time(microsecond),
    port_close(P),
    Gone = gone(Pid, T1, 10000),
    ct:log("exit ~b us after stdin closed", [Gone]),
    %% The ASan build adds its leak check at exit.
    ?assert(Gone < (case asan() of true -> 1000000; false -> 100000 end), Gone).

pings(_P, _Id, 0, Acc) ->
    lists:reverse(Acc);
pings(P, Id, N, Acc) ->
    T = erlang:monotonic_time(microsecond),
    ns_call(P, Id, ping, #{}),
    {{Id, ok, pong}, At} = wait_id_at(P, Id, erlang:monotonic_time(millisecond), 20000),
    L = (erlang:monotonic_time(microsecond) - T) / 1000,
    timer:sleep(15), % pacing: 60 pings spread over the lookup's 500 ms and after
    pings(P, Id + 1, N - 1, [{round(L), At} | Acc]).

%% The reply to Id, keeping others in the mailbox.
wait_id(P, Id, T0, Ms) ->
    element(1, wait_id_at(P, Id, T0, Ms)).

%% The reply to Id and when it arrived (monotonic ms).
wait_id_at(P, Id, T0, Ms) ->
    Left = max(0, T0 + Ms - erlang:monotonic_time(millisecond)),
    receive
        {P, {data, B}} ->
            Now = erlang:monotonic_time(millisecond),
            case binary_to_term(B) of
                {Id, _, _} = R -> {R, Now};
                Other -> self() ! {P, {stashed, Other, Now}}, wait_id_at(P, Id, T0, Ms)
            end;
        {P, {stashed, {Id, _, _} = R, At}} -> {R, At}
    after Left -> error({no_reply, Id})
    end.

%% Microseconds from T1 until process Pid has exited (gone or a zombie).
gone(Pid, T1, Ms) ->
    Stat = "/proc/" ++ integer_to_list(Pid) ++ "/stat",
    Dead = case file:read_file(Stat) of
               {error, _} -> true;
               {ok, S} -> [_, State | _] = string:split(lists:last(string:split(S, ")")), " ", all),
                          State =:= <<"Z">>
           end,
    Now = erlang:monotonic_time(microsecond),
    case Dead of
        true -> Now - T1;
        false when Now - T1 > Ms * 1000 -> error({still_running, Pid});
        false -> timer:sleep(1), gone(Pid, T1, Ms)
    end.

%% The positive case: a name the namespace's /etc/hosts knows is resolved
%% (by c-ares, through the same path) and the request goes through, over
%% the bridge to the test server; caravan:discover run inside a real
%% program in the namespace, and the command line too.
resolved_host_name(Config) ->
    ok = reg(Config, <<"a">>, <<"10.0.0.1">>, 4370),
    "http://" ++ HostPort = url(Config),
    [_, Port] = string:split(HostPort, ":"),
    Url = "http://consul.caravan.test:" ++ Port,
    P = ns_program(Config),
    ns_call(P, 1, consul_health, #{url => list_to_binary(Url), service => <<"app">>,
                                   timeout_ms => 5000}),
    {1, ok, #{members := [#{address := <<"10.0.0.1">>, port := 4370}]}} =
        wait_id(P, 1, erlang:monotonic_time(millisecond), 10000),
    port_close(P),
    {ok, Program} = caravan_config:port_program(),
    Out = os:cmd("/usr/sbin/ip netns exec " ++ ?config(ns, Config) ++ " " ++ Program ++
                     " lookup app --consul " ++ Url ++ " 2>&1"),
    ?assertEqual("app-4370@10.0.0.1", string:trim(Out)).

%%% nomad

nomad_reg(Config, Id, Address, Port, Extra) ->
    caravan_test_catalog:register(catalog(Config), <<"app">>,
                                  maps:merge(#{id => Id, address => Address, port => Port}, Extra)).

nomad_discover(Config) ->
    ok = nomad_reg(Config, <<"a">>, <<"10.0.0.1">>, 23001, #{}),
    ok = nomad_reg(Config, <<"b">>, <<"fd00::2">>, 23002, #{}),
    ok = nomad_reg(Config, <<"c">>, <<"10.0.0.3">>, 23003, #{namespace => <<"prod">>}),
    ?assertEqual({ok, ['app-23001@10.0.0.1', 'app-23002@fd00::2']}, nomad(Config)),
    ?assertEqual({ok, ['app-23003@10.0.0.3']}, nomad(Config, #{namespace => "prod"})).

nomad_pagination(Config) ->
    [ok = nomad_reg(Config, list_to_binary(io_lib:format("id-~3..0b", [I])), <<"10.0.1.1">>,
                    20000 + I, #{}) || I <- lists:seq(1, 25)],
    {ok, Nodes} = nomad(Config, #{per_page => 10}),
    ?assertEqual(25, length(Nodes)),
    ?assert(caravan_test_catalog:served(catalog(Config)) >= 3).

nomad_token(Config) ->
    ok = nomad_reg(Config, <<"a">>, <<"10.0.0.1">>, 23001, #{}),
    ok = caravan_test_catalog:set_token(catalog(Config), <<"n0mad">>),
    ?assertMatch({error, {forbidden, <<"HTTP 403: Permission denied">>}}, nomad(Config)),
    ?assertEqual({ok, ['app-23001@10.0.0.1']}, nomad(Config, #{token => "n0mad"})).

nomad_unix_socket(Config) ->
    ok = nomad_reg(Config, <<"a">>, <<"10.0.0.1">>, 23001, #{}),
    "unix://" ++ _ = Url = caravan_test_catalog:url(?config(server, Config)),
    ?assertEqual({ok, ['app-23001@10.0.0.1']}, nomad(Config, #{url => Url})),
    {ok, Program} = caravan_config:port_program(),
    ?assertEqual("app-23001@10.0.0.1",
                 string:trim(os:cmd(Program ++ " lookup app --nomad " ++ Url))).

%% A next token of 300 bytes (Nomad's are "namespace.id" strings, as long as
%% the IDs): read whole, so paging reaches every registration, never cut at
%% 255 bytes to an empty token that ends paging early (issue 10 item 8).
nomad_long_next_token(Config) ->
    Pad = binary:copy(<<"x">>, 300),
    [ok = nomad_reg(Config, <<(integer_to_binary(I))/binary, Pad/binary>>, <<"10.0.1.1">>,
                    20000 + I, #{}) || I <- lists:seq(1, 3)],
    ?assertEqual({ok, ['app-20001@10.0.1.1', 'app-20002@10.0.1.1', 'app-20003@10.0.1.1']},
                 nomad(Config, #{per_page => 1})),
    %% Past the program's header limit: refused, not cut.
    Huge = binary:copy(<<"y">>, 3000),
    ok = caravan_test_catalog:set_fault(catalog(Config),
                                        {headers, [{<<"X-Nomad-NextToken">>, Huge}],
                                         <<"[{\"Address\":\"10.0.0.1\",\"Port\":1}]">>}),
    ?assertMatch({error, {bad_answer, <<"X-Nomad-NextToken header longer than", _/binary>>}},
                 nomad(Config)).

nomad_watch(Config) ->
    ok = nomad_reg(Config, <<"a">>, <<"10.0.0.1">>, 23001, #{}),
    {ok, W} = caravan:watch({nomad, #{service => "app", basename => "app", wait => 5000,
                                      url => caravan_test_catalog:url(?config(server, Config))}},
                            self()),
    ?assertEqual({members, ['app-23001@10.0.0.1']}, next_event(W, 2000)),
    ok = nomad_reg(Config, <<"b">>, <<"10.0.0.2">>, 23002, #{}),
    ?assertEqual({members, ['app-23001@10.0.0.1', 'app-23002@10.0.0.2']}, next_event(W, 1000)),
    caravan:unwatch(W).

%% A server that pages forever (a new X-Nomad-NextToken on every page) is
%% read up to max_members members in total, then the answer is too_large:
%% the pages it serves, and so the members the caller holds, are bounded
%% by the cap, not by the 1000-page limit (which let one discover hold
%% 1000 pages of up to 32 MiB each: 2 GB in 24 s).
nomad_endless_pages_are_capped(Config) ->
    Counters = counters:new(2, []),
    ok = caravan_test_catalog:set_fault(catalog(Config), {endless_pages, 100, Counters}),
    {error, {too_large, Why}} = nomad(Config, #{max_members => 1000}),
    ?assertNotEqual(nomatch, string:find(Why, "more than 1000 members (max_members)")),
    %% 10 pages make 1000 members; the 11th passes the cap.
    ?assertEqual({1, 11}, {counters:get(Counters, 1), counters:get(Counters, 2)}),
    %% The default cap: 10000 members, 101 pages of 100.
    {error, {too_large, _}} = nomad(Config),
    ?assertEqual({2, 11 + 101}, {counters:get(Counters, 1), counters:get(Counters, 2)}).

%% Issue 18 (attacker): `timeout' bounded each page, not the listing: empty
%% pages of 0.4 s, each with a new token, held discover({nomad, #{timeout
%% => 1000}}) for up to 1000 pages. Now the pages share one timeout: the
%% call ends with timeout after 2 or 3 pages (of 0.4 s each), not 1000.
nomad_pages_share_one_timeout(Config) ->
    Counters = counters:new(1, []),
    ok = caravan_test_catalog:set_fault(catalog(Config), {slow_empty_pages, 400, Counters}),
    {error, {Why, Text}} = nomad(Config, #{timeout => 1000}),
    Pages = counters:get(Counters, 1),
    ct:log("~p ~ts after ~b pages", [Why, Text, Pages]),
    ?assertEqual(timeout, Why),
    ?assert(Pages >= 2 andalso Pages =< 4, {pages, Pages}).

%% A server that gives the same X-Nomad-NextToken again is looping: the
%% listing is refused as bad_answer at the first repeat (page 3), where it
%% was followed for all 1000 pages.
nomad_repeated_next_token_refused(Config) ->
    Counters = counters:new(1, []),
    ok = caravan_test_catalog:set_fault(catalog(Config), {same_token_pages, Counters}),
    {error, {bad_answer, Text}} = nomad(Config),
    ?assertNotEqual(nomatch, string:find(Text, "repeats an earlier X-Nomad-NextToken")),
    ?assertEqual(2, counters:get(Counters, 1)).

%% The same cap for a watch: the endless listing is one too_large event,
%% the members the watch had stand (no members event), and each query
%% reads at most the cap's pages.
nomad_watch_endless_pages_keep_listing(Config) ->
    ok = nomad_reg(Config, <<"a">>, <<"10.0.0.1">>, 23001, #{}),
    {ok, W} = caravan:watch({nomad, #{service => "app", basename => "app", wait => 1000,
                                      max_members => 500, per_page => 50,
                                      url => caravan_test_catalog:url(?config(server, Config))}},
                            self()),
    ?assertEqual({members, ['app-23001@10.0.0.1']}, next_event(W, 2000)),
    Counters = counters:new(2, []),
    ok = caravan_test_catalog:set_fault(catalog(Config), {endless_pages, 50, Counters}),
    %% The blocked query wakes by its wait; the next meets the endless pages.
    {error, {too_large, _}} = next_event(W, 5000),
    caravan:unwatch(W),
    Queries = counters:get(Counters, 1),
    Pages = counters:get(Counters, 2),
    ?assert(Queries >= 1),
    ?assert(Pages =< 11 * Queries, {Pages, Queries}),
    receive {caravan_watch, W, Event} -> ct:fail({after_error, Event})
    after 0 -> ok
    end.

%% Consul's one answer has the same cap on members as Nomad's pages.
consul_members_are_capped(Config) ->
    [ok = reg(Config, integer_to_binary(I), <<"10.0.2.", (integer_to_binary(I))/binary>>, 4370)
     || I <- lists:seq(1, 5)],
    {error, {too_large, Why}} = consul(Config, #{max_members => 4}),
    ?assertNotEqual(nomatch, string:find(Why, "more than 4 members")),
    {ok, Nodes} = consul(Config, #{max_members => 5}),
    ?assertEqual(5, length(Nodes)).

%% An address that is not in strict form is no node's host: Consul's
%% "127.000.000.010" became app-4370@127.0.0.8 and "2130706442"
%% app-4370@127.0.0.10 (caravan_name:address/1). They are left out, the
%% others kept, in a discover and in a watch alike.
ambiguous_addresses_are_left_out(Config) ->
    ok = reg(Config, <<"a">>, <<"127.000.000.010">>, 4370),
    ok = reg(Config, <<"b">>, <<"2130706442">>, 4371),
    ok = reg(Config, <<"c">>, <<"010.0.0.1">>, 4372),
    ok = reg(Config, <<"d">>, <<"10.0.0.4">>, 4373),
    ?assertEqual({ok, ['app-4373@10.0.0.4']}, consul(Config)),
    {ok, W} = caravan:watch({consul, #{service => "app", basename => "app", url => url(Config)}},
                            self()),
    ?assertEqual({members, ['app-4373@10.0.0.4']}, next_event(W, 2000)),
    caravan:unwatch(W).

nomad_ambiguous_addresses_are_left_out(Config) ->
    ok = nomad_reg(Config, <<"a">>, <<"127.000.000.010">>, 4370, #{}),
    ok = nomad_reg(Config, <<"b">>, <<"2130706442">>, 4371, #{}),
    ok = nomad_reg(Config, <<"d">>, <<"10.0.0.4">>, 4373, #{}),
    ?assertEqual({ok, ['app-4373@10.0.0.4']}, nomad(Config)).
%%% proxy (issue 18 item 1)

%% The proxy variables a program is started with; every other one unset, so
%% that the VM's own environment plays no part.
proxy_env(Set) ->
    Vars = ["HTTP_PROXY", "http_proxy", "HTTPS_PROXY", "https_proxy", "NO_PROXY", "no_proxy",
            "ALL_PROXY", "all_proxy"],
    [{V, proplists:get_value(V, Set, false)} || V <- Vars].

proxy_program(Set) ->
    {ok, Program} = caravan_config:port_program(),
    open_port({spawn_executable, Program},
              [{env, proxy_env(Set)}, {packet, 4}, binary, exit_status]).

%% One consul_health request through program P: its reply.
proxy_call(P, Id, Args) ->
    ns_call(P, Id, consul_health, maps:merge(#{service => <<"app">>, timeout_ms => 5000}, Args)),
    wait_id(P, Id, erlang:monotonic_time(millisecond), 15000).

addresses({_, ok, #{members := Ms}}) -> [A || #{address := A} <- Ms];
addresses(Other) -> Other.

%% With HTTP_PROXY and HTTPS_PROXY set, requests to 127.0.0.1, localhost and
%% a unix socket go straight to the server: the proxy sees no request and
%% so never the token, even when the request names that proxy itself.
loopback_never_uses_a_proxy(Config) ->
    [Px, Other] = ?config(proxies, Config),
    Token = <<"l00pback-t0ken-4444">>,
    ok = reg(Config, <<"a">>, <<"10.0.0.1">>, 4370),
    ok = caravan_test_catalog:set_token(catalog(Config), Token),
    ok = caravan_test_catalog:register(caravan_test_catalog:catalog(?config(unix_server, Config)),
                                       <<"app">>,
                                       #{id => <<"u">>, address => <<"10.0.0.2">>, port => 1}),
    Loopback = list_to_binary(url(Config)),
    <<"http://127.0.0.1:", Port/binary>> = Loopback,
    %% libcurl reads http_proxy in lowercase only (HTTP_PROXY is refused there
    %% for CGI's sake); Go reads both.
    P = proxy_program([{"http_proxy", caravan_test_proxy:url(Px)},
                       {"HTTPS_PROXY", caravan_test_proxy:url(Px)}]),
    Urls = [Loopback, <<"http://localhost:", Port/binary>>, <<"http://127.1:", Port/binary>>],
    [?assertEqual({Url, [<<"10.0.0.1">>]},
                  {Url, addresses(proxy_call(P, I, #{url => Url, token => Token}))})
     || {I, Url} <- lists:zip(lists:seq(1, 3), Urls)],
    ?assertEqual([<<"10.0.0.1">>],
                 addresses(proxy_call(P, 4, #{url => Loopback, token => Token,
                                              proxy => list_to_binary(
                                                         caravan_test_proxy:url(Other))}))),
    Unix = list_to_binary(caravan_test_catalog:url(?config(unix_server, Config))),
    ns_call(P, 5, nomad_services, #{url => Unix, service => <<"app">>, token => Token}),
    {5, ok, #{members := [#{address := <<"10.0.0.2">>}]}} =
        wait_id(P, 5, erlang:monotonic_time(millisecond), 15000),
    port_close(P),
    ?assertEqual([], caravan_test_proxy:requests(Px)),
    ?assertEqual([], caravan_test_proxy:requests(Other)).

%% libcurl percent-decodes a URL's host: "%31%32%37.0.0.1" is 127.0.0.1 to
%% it, "%6c...%74" localhost. Such hosts (and empty labels) are refused as
%% bad_args, with the environment's proxy and with the request's own: the
%% proxies see no request, so never the token. 0.0.0.0, which Linux
%% connects to the local host, goes direct.
encoded_loopback_never_reaches_a_proxy(Config) ->
    [Px, Other] = ?config(proxies, Config),
    Token = <<"enc0ded-t0ken-5555">>,
    ok = reg(Config, <<"a">>, <<"10.0.0.1">>, 4370),
    ok = caravan_test_catalog:set_token(catalog(Config), Token),
    <<"http://127.0.0.1:", Port/binary>> = list_to_binary(url(Config)),
    P = proxy_program([{"HTTP_PROXY", caravan_test_proxy:url(Px)},
                       {"http_proxy", caravan_test_proxy:url(Px)},
                       {"HTTPS_PROXY", caravan_test_proxy:url(Px)}]),
    Hosts = [<<"%31%32%37.0.0.1">>, <<"%6c%6f%63%61%6c%68%6f%73%74">>, <<"127.0.0.1%2e">>,
             <<"localhost%2e">>, <<"localhost..">>, <<"127.0.0.1..">>],
    Urls = [<<"http://", H/binary, ":", Port/binary>> || H <- Hosts],
    OtherUrl = list_to_binary(caravan_test_proxy:url(Other)),
    Replies = [{Url, proxy_call(P, I, Args#{url => Url, token => Token})}
               || {I, {Url, Args}} <- lists:zip(lists:seq(1, 2 * length(Urls)),
                                                [{U, #{}} || U <- Urls] ++
                                                    [{U, #{proxy => OtherUrl}} || U <- Urls])],
    [?assertMatch({_, {_, error, {bad_args, _}}}, R) || R <- Replies],
    ?assertEqual([<<"10.0.0.1">>],
                 addresses(proxy_call(P, 100, #{url => <<"http://0.0.0.0:", Port/binary>>,
                                                token => Token}))),
    port_close(P),
    ?assertEqual([], caravan_test_proxy:requests(Px)),
    ?assertEqual([], caravan_test_proxy:requests(Other)).

%% Any other host follows the environment as HashiCorp's Go clients do: the
%% env proxy serves it (its own answer comes back), with the token only in
%% the request meant for the server; an https:// URL asks CONNECT without
%% the token; NO_PROXY (either case, an address or a CIDR) sends it direct.
other_hosts_follow_the_environment(Config) ->
    [Px, _] = ?config(proxies, Config),
    Token = <<"n0t-l00pback-t0ken-5555">>,
    ok = reg(Config, <<"a">>, <<"10.0.0.1">>, 4370),
    Url = list_to_binary(url_at(Config)),
    <<"http://198.18.0.1:", Port/binary>> = Url,
    ProxyUrl = caravan_test_proxy:url(Px),
    P = proxy_program([{"HTTP_PROXY", ProxyUrl}, {"HTTPS_PROXY", ProxyUrl}]),
    ?assertEqual([<<"198.18.7.7">>], addresses(proxy_call(P, 1, #{url => Url, token => Token}))),
    Https = <<"https://198.18.0.1:", Port/binary>>,
    {2, error, _} = proxy_call(P, 2, #{url => Https, token => Token}),
    port_close(P),
    [Get, Connect] = caravan_test_proxy:requests(Px),
    ?assertMatch(#{method := <<"GET">>, headers := #{<<"x-consul-token">> := Token}}, Get),
    Expected = <<Url/binary, "/v1/health/service/app?passing=true">>,
    ?assertEqual(Expected, maps:get(uri, Get)),
    ?assertMatch(#{method := <<"CONNECT">>}, Connect),
    ?assertEqual(false, maps:is_key(<<"x-consul-token">>, maps:get(headers, Connect))),
    %% NO_PROXY: the real server answers, the proxy sees nothing more.
    [begin
         Q = proxy_program([{"HTTP_PROXY", ProxyUrl} | NoProxy]),
         ?assertEqual({NoProxy, [<<"10.0.0.1">>]},
                      {NoProxy, addresses(proxy_call(Q, 3, #{url => Url, token => Token}))}),
         port_close(Q)
     end || NoProxy <- [[{"NO_PROXY", "198.18.0.1"}], [{"no_proxy", "example.org, 198.18.0.0/15"}],
                        [{"NO_PROXY", "*"}], [{"NO_PROXY", "198.18.0.1:" ++ binary_to_list(Port)}]]],
    ?assertEqual(2, length(caravan_test_proxy:requests(Px))),
    %% http_proxy (lowercase) counts as well, and NO_PROXY for another port does not exempt.
    R = proxy_program([{"http_proxy", ProxyUrl}, {"NO_PROXY", "198.18.0.1:1"}]),
    ?assertEqual([<<"198.18.7.7">>], addresses(proxy_call(R, 4, #{url => Url}))),
    port_close(R),
    ?assertEqual(3, length(caravan_test_proxy:requests(Px))).

%% The request's own `proxy': `none' goes direct despite the environment; a
%% URL is used instead of the environment's, also when given by host name
%% (resolved in the program's loop, so an unknown one is nxdomain from the
%% program's resolver, not from libcurl's); through the Erlang API too.
proxy_option_none_and_url(Config) ->
    [Env, Mine] = ?config(proxies, Config),
    Token = <<"0pti0n-t0ken-6666">>,
    ok = reg(Config, <<"a">>, <<"10.0.0.1">>, 4370),
    Url = list_to_binary(url_at(Config)),
    P = proxy_program([{"HTTP_PROXY", caravan_test_proxy:url(Env)}]),
    ?assertEqual([<<"10.0.0.1">>],
                 addresses(proxy_call(P, 1, #{url => Url, token => Token, proxy => none}))),
    MineUrl = list_to_binary(caravan_test_proxy:url(Mine)),
    ?assertEqual([<<"198.18.7.7">>],
                 addresses(proxy_call(P, 2, #{url => Url, token => Token, proxy => MineUrl}))),
    #{port := MinePort} = Mine,
    ByName = <<"http://localhost:", (integer_to_binary(MinePort))/binary>>,
    ?assertEqual([<<"198.18.7.7">>],
                 addresses(proxy_call(P, 3, #{url => Url, token => Token, proxy => ByName}))),
    {4, error, {nxdomain, Detail}} =
        proxy_call(P, 4, #{url => Url, proxy => <<"http://proxy.invalid:3128">>}),
    ?assertMatch({_, _}, binary:match(Detail, <<"the proxy proxy.invalid">>)),
    {5, error, {bad_args, _}} = proxy_call(P, 5, #{url => Url, proxy => <<"socks5://h:1">>}),
    {6, error, {bad_args, _}} = proxy_call(P, 6, #{url => Url, proxy => direct}),
    port_close(P),
    ?assertEqual([], caravan_test_proxy:requests(Env)),
    [#{headers := #{<<"x-consul-token">> := Token}},
     #{headers := #{<<"x-consul-token">> := Token}}] = caravan_test_proxy:requests(Mine),
    %% The sources' option, down from caravan:discover.
    Source = #{service => "app", basename => "app", url => binary_to_list(Url)},
    ?assertEqual({ok, ['app-4370@198.18.7.7']},
                 caravan:discover({consul, Source#{proxy => binary_to_list(MineUrl)}})),
    ?assertEqual({ok, ['app-4370@10.0.0.1']}, caravan:discover({consul, Source#{proxy => none}})),
    ?assertEqual(3, length(caravan_test_proxy:requests(Mine))),
    ?assertMatch({error, {bad_args, _}}, caravan:discover({consul, Source#{proxy => 42}})).

url_at(Config) ->
    "http://127.0.0.1:" ++ Port = url(Config),
    "http://" ++ caravan_test_netns:bind_address(?config(net, Config)) ++ ":" ++ Port.

%%% reply size (issue 18 item 3)

%% An answer within max_bytes whose reply would be longer than its owner
%% reads (here an owner reading 1 MiB; caravan's own read 64 MiB): that
%% request alone gets too_large. The program is not killed over it, so the
%% requests in flight beside it (delayed pings, a name lookup) are answered.
reply_over_the_owners_limit_fails_alone(Config) ->
    Entry = <<"{\"Node\":{\"Node\":\"n\",\"Address\":\"10.0.0.1\"},\"Service\":{\"ID\":\"i\","
              "\"Service\":\"app\",\"Address\":\"\",\"Port\":1}}">>,
    N = 30000,
    Body = iolist_to_binary([$[, lists:join($,, lists:duplicate(N, Entry)), $]]),
    ok = caravan_test_catalog:set_fault(catalog(Config), {body, Body}),
    {ok, Program} = caravan_config:port_program(),
    Owner = caravan_big_reply_owner,
    {ok, Pid} = caravan_port:start_link(Owner, #{program => Program,
                                                 max_reply_bytes => 1024 * 1024}),
    try
        {ok, OsPid} = caravan_port:os_pid(Owner),
        Self = self(),
        Pings = [spawn_link(fun() ->
                                    Self ! {self(), caravan_port:call(Owner, ping,
                                                                      #{delay_ms => D}, 30000)}
                            end) || D <- [200, 400, 800, 1600]],
        Big = caravan_port:call(Owner, consul_health,
                                #{url => list_to_binary(url(Config)), service => <<"app">>,
                                  max_bytes => 64 * 1024 * 1024, timeout_ms => 30000}, 60000),
        ?assertMatch({error, {too_large, _}}, Big),
        {error, {too_large, Detail}} = Big,
        ct:log("~b members, ~b bytes of JSON: ~s", [N, byte_size(Body), Detail]),
        ?assertEqual([{ok, pong} || _ <- Pings],
                     [receive {P, R} -> R after 30000 -> no_reply end || P <- Pings]),
        ?assertEqual({ok, 4370}, caravan_port:call(Owner, dist_port, #{name => <<"a-4370">>},
                                                   5000)),
        ?assertEqual({ok, OsPid}, caravan_port:os_pid(Owner))
    after
        unlink(Pid),
        exit(Pid, shutdown)
    end.

%%% CLI node names (issue 18 items 5 and 6, the C side)

%% The CLI names nodes as caravan_name does: "127.000.000.010" (octal:
%% 127.0.0.8), "2130706442" (127.0.0.10), "010.0.0.1" (8.0.0.1) and a zoned
%% IPv6 are left out and counted on stderr, a strict address is written
%% canonically, a host name kept, port 0 left out. It printed all of them
%% as given, port 0 included.
cli_reads_addresses_strictly(Config) ->
    [ok = reg(Config, Id, Address, Port)
     || {Id, Address, Port} <- [{<<"a">>, <<"127.000.000.010">>, 4370},
                                {<<"b">>, <<"2130706442">>, 4371},
                                {<<"c">>, <<"010.0.0.1">>, 4372},
                                {<<"d">>, <<"fe80::1%eth0">>, 4373},
                                {<<"e">>, <<"10.0.0.5">>, 4374},
                                {<<"f">>, <<"FD00::0001">>, 4375},
                                {<<"g">>, <<"node7.example">>, 4376},
                                {<<"h">>, <<"10.0.0.8">>, 0}]],
    {ok, Program} = caravan_config:port_program(),
    Out = os:cmd(Program ++ " lookup app --consul " ++ url(Config) ++ " 2>/dev/null"),
    ?assertEqual(["app-4374@10.0.0.5", "app-4375@fd00::1", "app-4376@node7.example"],
                 lists:sort(string:split(string:trim(Out), "\n", all))),
    Err = os:cmd(Program ++ " lookup app --consul " ++ url(Config) ++ " 2>&1 >/dev/null"),
    ?assertNotEqual(nomatch, string:find(Err, "4 instance(s) left out")).

%%%---------------------------------------------------------------------------
%%% libcurl loads on a thread (issue 23): the program against a libcurl.so.4
%%% whose load takes 500 ms (or longer) and then fails for want of symbols.
%%%---------------------------------------------------------------------------

slow_program(Config, Ms) ->
    {ok, Program} = caravan_config:port_program(),
    open_port({spawn_executable, Program},
              [{env, caravan_test_slow_libcurl:env(?config(slow_libcurl_dir, Config), Ms)},
               {packet, 4}, binary, exit_status]).

%% The next reply of program P, whatever its id.
next_reply(P) ->
    receive
        {P, {data, B}} -> binary_to_term(B);
        {P, {exit_status, S}} -> error({program_exited, S})
    after 20000 -> error(no_reply)
    end.

consul_args() ->
    #{url => <<"http://127.0.0.1:1">>, service => <<"app">>, timeout_ms => 10000,
      proxy => none}.

%% The error a request gets when the load fails: today's text, then why.
load_failure({Id, error, {http_error, Detail}}) ->
    ?assertMatch(<<"libcurl could not be loaded (is libcurl4 installed?): "
                   "libcurl.so.4 lacks curl_global_init">>, Detail),
    Id;
load_failure(Other) ->
    error({not_a_load_failure, Other}).

%% A ping sent after the first HTTP request, while libcurl loads, is
%% answered before that request: the load no longer holds up the loop. Its
%% error names what the library lacks; info says the same.
pong_while_libcurl_loads(Config) ->
    P = slow_program(Config, 500),
    ns_call(P, 1, consul_health, consul_args()),
    ns_call(P, 2, ping, #{}),
    First = next_reply(P),
    Second = next_reply(P),
    ct:log("replies in order: ~p, ~p", [First, Second]),
    ?assertEqual({2, ok, pong}, First),
    1 = load_failure(Second),
    ns_call(P, 3, info, #{}),
    {3, ok, #{libcurl := Curl, http_inflight := 0}} = next_reply(P),
    ?assertEqual(<<"none: libcurl.so.4 lacks curl_global_init">>, Curl),
    port_close(P).

%% Requests of every HTTP op made while libcurl loads wait for it in
%% order; when the load fails each gets its error, in the order sent, and
%% the program's slots are all free again.
requests_parked_during_the_load_all_fail(Config) ->
    P = slow_program(Config, 500),
    Base = consul_args(),
    Reg = #{url => <<"http://127.0.0.1:1">>, id => <<"app-1">>, name => <<"app">>,
            address => <<"127.0.0.1">>, port => 4370},
    Sent = [{1, consul_health, Base}, {2, nomad_services, Base},
            {3, consul_register, Reg}, {4, consul_deregister, #{url => <<"http://127.0.0.1:1">>,
                                                               id => <<"app-1">>}},
            {5, consul_health, Base#{index => 7, wait_ms => 60000}}],
    [ns_call(P, Id, Op, Args) || {Id, Op, Args} <- Sent],
    ns_call(P, 6, info, #{}),
    {6, ok, #{http_inflight := Parked, libcurl := Loading}} = next_reply(P),
    ct:log("while loading: ~b in flight, libcurl ~s", [Parked, Loading]),
    ?assertEqual(5, Parked),
    ?assertMatch(<<"none: not loaded yet (loading", _/binary>>, Loading),
    Ids = [load_failure(next_reply(P)) || _ <- Sent],
    ?assertEqual([1, 2, 3, 4, 5], Ids),
    ns_call(P, 7, info, #{}),
    {7, ok, #{http_inflight := 0, errors := Errors}} = next_reply(P),
    ?assertEqual(5, Errors),
    %% A request after a failed load tries again, parked as before.
    ns_call(P, 8, consul_health, Base),
    ns_call(P, 9, ping, #{}),
    ?assertEqual({9, ok, pong}, next_reply(P)),
    8 = load_failure(next_reply(P)),
    port_close(P).

%% A parked request can be cancelled (freed, counted, never answered), and
%% one whose timeout passes while it waits is answered timeout at its
%% deadline, before the load ends and the others get their error.
cancel_and_deadline_while_parked(Config) ->
    P = slow_program(Config, 500),
    ns_call(P, 1, consul_health, consul_args()),
    ns_call(P, 2, consul_health, consul_args()),
    ns_call(P, 3, consul_health, (consul_args())#{timeout_ms => 50}),
    ns_call(P, 4, cancel, #{id => 1}),
    ?assertEqual({4, ok, cancelled}, next_reply(P)),
    ns_call(P, 5, info, #{}),
    {5, ok, #{http_inflight := 2, cancelled := 1}} = next_reply(P),
    Timeout = next_reply(P),
    ct:log("the parked request past its deadline: ~p", [Timeout]),
    ?assertMatch({3, error, {timeout, <<"no answer within 50 ms", _/binary>>}}, Timeout),
    2 = load_failure(next_reply(P)),
    %% Nothing for the cancelled request: the next reply is this pong.
    ns_call(P, 6, cancel, #{id => 1}),
    ?assertEqual({6, ok, not_found}, next_reply(P)),
    ns_call(P, 7, info, #{}),
    {7, ok, #{http_inflight := 0, cancel_noops := 1}} = next_reply(P),
    port_close(P).

%% stdin closes while the loader thread is inside dlopen (a constructor
%% that takes 30 s): the program exits at once, not when dlopen returns
%% (exit() would wait for the dynamic linker's lock the loader holds).
exit_while_libcurl_loads(Config) ->
    P = slow_program(Config, 30000),
    {os_pid, Pid} = erlang:port_info(P, os_pid),
    ns_call(P, 1, consul_health, consul_args()),
    ns_call(P, 2, ping, #{}),
    ?assertEqual({2, ok, pong}, next_reply(P)),
    T1 = erlang:monotonic_time(microsecond),
    port_close(P),
    Gone = try gone(Pid, T1, 5000)
           catch error:{still_running, _} = E ->
                   _ = os:cmd("kill -9 " ++ integer_to_list(Pid)),
                   error(E)
           end,
    ct:log("exit ~b us after stdin closed, the loader still in dlopen", [Gone]).

%% With the real libcurl: requests sent at once, while it loads, are all
%% started when it is loaded and answered, each with its own answer.
requests_made_during_a_real_load_all_succeed(Config) ->
    {ok, Program} = caravan_config:port_program(),
    P = open_port({spawn_executable, Program}, [{packet, 4}, binary, exit_status]),
    Url = list_to_binary(caravan_test_catalog:url(?config(server, Config))),
    Ids = lists:seq(1, 5),
    [ns_call(P, Id, consul_health, (consul_args())#{url => Url}) || Id <- Ids],
    Replies = lists:sort([next_reply(P) || _ <- Ids]),
    ct:log("replies: ~p", [Replies]),
    ?assertMatch([{1, ok, #{members := []}}, {2, ok, _}, {3, ok, _}, {4, ok, _}, {5, ok, _}],
                 Replies),
    ns_call(P, 6, info, #{}),
    {6, ok, #{http_inflight := 0, libcurl := <<"libcurl.so.4: libcurl/", _/binary>>}} =
        next_reply(P),
    port_close(P).

%%% Consul's consistency modes and agent caching (issue 24): the options
%%% `consistency', `cached' and `max_stale' of a Consul source, end to end
%%% (caravan_options -> caravan_consul -> the C program -> the URL) against
%%% the Consul test server (caravan_test_consul), which answers them as
%%% Consul's "Consistency Modes" and "Agent Caching" docs describe.
-module(caravan_consul_consistency_SUITE).

-include_lib("common_test/include/ct.hrl").
-include_lib("eunit/include/eunit.hrl").

-export([all/0, groups/0, suite/0]).
-export([init_per_testcase/2, end_per_testcase/2]).
-export([defaults_ask_for_stale_cached_reads/1, consistent_is_sent_as_asked/1,
         cached_is_on_the_request/1, default_mode_sends_no_mode/1,
         watch_sends_the_mode_on_every_query/1,
         known_leader_false_keeps_the_last_listing/1, known_leader_false_fails_discover/1,
         last_contact_over_max_stale_is_an_error/1, cache_age_over_max_stale_is_an_error/1,
         refused_combinations_name_the_key/1, program_refuses_combinations_too/1,
         cached_watches_share_one_upstream_query/1]).

-define(CONSISTENCY_KEYS, [<<"stale">>, <<"consistent">>, <<"cached">>, <<"leader">>,
                           <<"max_stale">>]).

suite() ->
    [{ct_hooks, [caravan_test_app]}].

all() ->
    [{group, parameters}, {group, freshness}, {group, refusals}, {group, load}].

groups() ->
    [{parameters, [], [defaults_ask_for_stale_cached_reads, consistent_is_sent_as_asked,
                       cached_is_on_the_request, default_mode_sends_no_mode,
                       watch_sends_the_mode_on_every_query]},
     {freshness, [], [known_leader_false_keeps_the_last_listing,
                      known_leader_false_fails_discover,
                      last_contact_over_max_stale_is_an_error,
                      cache_age_over_max_stale_is_an_error]},
     {refusals, [], [refused_combinations_name_the_key, program_refuses_combinations_too]},
     {load, [], [cached_watches_share_one_upstream_query]}].

init_per_testcase(_Case, Config) ->
    Server = caravan_test_consul:start(#{}),
    ok = caravan_test_catalog:register(caravan_test_catalog:catalog(Server), <<"app">>,
                                       #{id => <<"a">>, address => <<"10.0.0.1">>, port => 4370}),
    [{server, Server} | Config].

end_per_testcase(_Case, Config) ->
    caravan_test_catalog:stop_server(?config(server, Config)).

%%% helpers

server(Config) -> ?config(server, Config).
catalog(Config) -> caravan_test_catalog:catalog(server(Config)).

source(Config, Extra) ->
    {consul, maps:merge(#{service => "app", basename => "app",
                          url => caravan_test_catalog:url(server(Config))}, Extra)}.

discover(Config, Extra) -> caravan:discover(source(Config, Extra)).

reg(Config, Id, Address, Port) ->
    caravan_test_catalog:register(catalog(Config), <<"app">>,
                                  #{id => Id, address => Address, port => Port}).

%% The consistency and caching parameters of the last request, sorted.
last_mode(Config) ->
    Q = lists:last(caravan_test_consul:queries(server(Config))),
    lists:sort([K || K <- ?CONSISTENCY_KEYS, maps:is_key(K, Q)]).

next_event(Watch, Ms) ->
    receive {caravan_watch, Watch, Event} -> Event after Ms -> none end.

%%% parameters

%% @doc Without options a source asks for stale reads from the agent's cache.
defaults_ask_for_stale_cached_reads(Config) ->
    ?assertEqual({ok, ['app-4370@10.0.0.1']}, discover(Config, #{})),
    ?assertEqual([<<"cached">>, <<"stale">>], last_mode(Config)).

%% @doc `consistency => consistent' sends ?consistent, never ?stale, and no
%% ?cached (Consul refuses the pair).
consistent_is_sent_as_asked(Config) ->
    ?assertEqual({ok, ['app-4370@10.0.0.1']}, discover(Config, #{consistency => consistent})),
    ?assertEqual([<<"consistent">>], last_mode(Config)),
    ?assertEqual({ok, ['app-4370@10.0.0.1']},
                 discover(Config, #{consistency => consistent, cached => false})),
    ?assertEqual([<<"consistent">>], last_mode(Config)).

%% @doc `cached => true' puts ?cached on the request in every mode that
%% takes it; `cached => false' leaves it off.
cached_is_on_the_request(Config) ->
    Cases = [{#{cached => true}, [<<"cached">>, <<"stale">>]},
             {#{consistency => stale, cached => true}, [<<"cached">>, <<"stale">>]},
             {#{consistency => default, cached => true}, [<<"cached">>]},
             {#{consistency => default}, [<<"cached">>]},
             {#{cached => false}, [<<"stale">>]}],
    [begin
         ?assertEqual({ok, ['app-4370@10.0.0.1']}, discover(Config, Opts), Opts),
         ?assertEqual(Want, last_mode(Config), Opts)
     end || {Opts, Want} <- Cases].

%% @doc `consistency => default, cached => false' is the request caravan
%% made before these options: no mode parameter at all.
default_mode_sends_no_mode(Config) ->
    ?assertEqual({ok, ['app-4370@10.0.0.1']},
                 discover(Config, #{consistency => default, cached => false})),
    ?assertEqual([], last_mode(Config)).

%% @doc A watch's blocking queries carry the mode too, each of them.
watch_sends_the_mode_on_every_query(Config) ->
    {ok, W} = caravan:watch(source(Config, #{consistency => consistent, wait => 2000}), self()),
    ?assertEqual({members, ['app-4370@10.0.0.1']}, next_event(W, 5000)),
    ok = reg(Config, <<"b">>, <<"10.0.0.2">>, 4371),
    ?assertEqual({members, ['app-4370@10.0.0.1', 'app-4371@10.0.0.2']}, next_event(W, 5000)),
    caravan:unwatch(W),
    Qs = caravan_test_consul:queries(server(Config)),
    ?assert(length(Qs) >= 2),
    [?assertEqual({true, false, false},
                  {maps:is_key(<<"consistent">>, Q), maps:is_key(<<"stale">>, Q),
                   maps:is_key(<<"cached">>, Q)}, Q) || Q <- Qs],
    ?assert(lists:any(fun(Q) -> maps:is_key(<<"index">>, Q) end, Qs)).

%%% freshness

%% @doc A stale answer from servers that know no leader is an error: the
%% watch reports it and keeps the members it had; a change it carries is
%% not taken. With a leader again, the watch goes on.
known_leader_false_keeps_the_last_listing(Config) ->
    {ok, W} = caravan:watch(source(Config, #{wait => 2000}), self()),
    ?assertEqual({members, ['app-4370@10.0.0.1']}, next_event(W, 5000)),
    ok = caravan_test_consul:set_leader(server(Config), false, 0),
    ok = reg(Config, <<"b">>, <<"10.0.0.2">>, 4371),
    {error, {stale, Detail}} = next_event(W, 5000),
    ?assertNotEqual(nomatch, binary:match(Detail, <<"KnownLeader">>)),
    %% Retried with backoff, still failing: no members event in between.
    ?assertEqual(none, next_event(W, 1500)),
    ok = caravan_test_consul:set_leader(server(Config), true, 0),
    ?assertEqual({members, ['app-4370@10.0.0.1', 'app-4371@10.0.0.2']}, next_event(W, 20000)),
    caravan:unwatch(W).

%% @doc discover/1 in every mode that gets an answer without a leader:
%% `{error, {stale, _}}'; in the others Consul itself fails (500).
known_leader_false_fails_discover(Config) ->
    ok = caravan_test_consul:set_leader(server(Config), false, 0),
    ?assertMatch({error, {stale, _}}, discover(Config, #{})),
    ?assertMatch({error, {stale, _}}, discover(Config, #{consistency => stale, cached => false})),
    ?assertMatch({error, {stale, _}}, discover(Config, #{consistency => default})),
    ?assertMatch({error, {server_error, _}},
                 discover(Config, #{consistency => default, cached => false})),
    ?assertMatch({error, {server_error, _}}, discover(Config, #{consistency => consistent})).

%% @doc X-Consul-LastContact beyond max_stale is an error (the watch keeps
%% its members); within it, the answer is taken.
last_contact_over_max_stale_is_an_error(Config) ->
    Opts = #{max_stale => 1000, cached => false},
    ok = caravan_test_consul:set_leader(server(Config), true, 999),
    ?assertEqual({ok, ['app-4370@10.0.0.1']}, discover(Config, Opts)),
    ok = caravan_test_consul:set_leader(server(Config), true, 1000),
    ?assertEqual({ok, ['app-4370@10.0.0.1']}, discover(Config, Opts)),
    ok = caravan_test_consul:set_leader(server(Config), true, 1001),
    {error, {stale, Detail}} = discover(Config, Opts),
    ?assertNotEqual(nomatch, binary:match(Detail, <<"LastContact 1001 ms">>)),
    %% Without max_stale there is no bound: the same answer is taken.
    ?assertEqual({ok, ['app-4370@10.0.0.1']}, discover(Config, #{cached => false})),
    {ok, W} = caravan:watch(source(Config, Opts#{wait => 2000}), self()),
    ?assertMatch({error, {stale, _}}, next_event(W, 5000)),
    ok = caravan_test_consul:set_leader(server(Config), true, 10),
    ?assertEqual({members, ['app-4370@10.0.0.1']}, next_event(W, 20000)),
    caravan:unwatch(W).

%% @doc A cache hit whose Age passes max_stale (the agent lost the servers)
%% is an error; the first, a miss fetched from the servers, is not.
cache_age_over_max_stale_is_an_error(Config) ->
    Opts = #{max_stale => 5000},
    ok = caravan_test_consul:set_age(server(Config), 6),
    ?assertEqual({ok, ['app-4370@10.0.0.1']}, discover(Config, Opts)),   % MISS
    {error, {stale, Detail}} = discover(Config, Opts),                  % HIT, Age 6
    ?assertNotEqual(nomatch, binary:match(Detail, <<"Age 6 s">>)),
    ok = caravan_test_consul:set_age(server(Config), 5),
    ?assertEqual({ok, ['app-4370@10.0.0.1']}, discover(Config, Opts)).

%%% refusals

%% @doc What Consul refuses is refused before any request, the key named:
%% by discover/1 (bad_args text), watch/2 and a cluster's config.
refused_combinations_name_the_key(Config) ->
    Conflicts = [{#{consistency => consistent, cached => true},
                  {conflict, cached, {consistency, consistent}}},
                 {#{consistency => consistent, max_stale => 1000},
                  {conflict, max_stale, {consistency, consistent}}},
                 {#{consistency => default, max_stale => 1000},
                  {conflict, max_stale, {consistency, default}}},
                 {#{consistency => eventual}, {bad_config, consistency, eventual}},
                 {#{cached => yes}, {bad_config, cached, yes}},
                 {#{max_stale => 0}, {bad_config, max_stale, 0}}],
    Before = length(caravan_test_consul:queries(server(Config))),
    [begin
         Source = source(Config, Opts),
         Key = element(2, Reason),
         {error, {bad_args, Text}} = caravan:discover(Source),
         ?assertMatch({_, _}, binary:match(Text, atom_to_binary(Key)), Text),
         ?assertEqual({error, Reason}, caravan:watch(Source, self())),
         ?assertEqual({error, Reason}, caravan_cluster_config:check(#{sources => [Source]}))
     end || {Opts, Reason} <- Conflicts],
    ?assertEqual(Before, length(caravan_test_consul:queries(server(Config)))),
    %% consistent alone is fine: cached defaults to false with it.
    ?assertEqual(ok, caravan_options:check_source(source(Config, #{consistency => consistent}))).

%% @doc The C program checks the same pairs (docs/protocol.md), answering
%% bad_args with the key named.
program_refuses_combinations_too(Config) ->
    Url = unicode:characters_to_binary(caravan_test_catalog:url(server(Config))),
    Base = #{url => Url, service => <<"app">>},
    Cases = [{#{consistency => consistent, cached => true}, <<"cached">>},
             {#{consistency => consistent, max_stale_ms => 10}, <<"max_stale_ms">>},
             {#{max_stale_ms => 10}, <<"max_stale_ms">>},
             {#{consistency => eventual}, <<"consistency">>},
             {#{cached => maybe}, <<"cached">>}],
    [begin
         {error, {bad_args, Msg}} = caravan_port:call(caravan_lookup, consul_health,
                                                      maps:merge(Base, Args), 5000),
         ?assertMatch({0, _}, binary:match(Msg, Key), Msg)
     end || {Args, Key} <- Cases],
    ?assertMatch({ok, #{members := [_]}},
                 caravan_port:call(caravan_lookup, consul_health,
                                   Base#{consistency => stale, cached => true,
                                         max_stale_ms => 10}, 5000)).

%%% load

%% @doc N cached watches behind one agent: after a change, one of them
%% misses and goes to the servers, the others hit the cache. Uncached, all
%% N go to the servers.
cached_watches_share_one_upstream_query(_Config) ->
    N = 5,
    %% A server per round: a stopped watch's query stays in the server
    %% until its wait ends, and would be answered in the next round.
    Upstream =
        fun(Opts) ->
                S = caravan_test_consul:start(#{}),
                C = caravan_test_catalog:catalog(S),
                Reg = fun(Id, Port) ->
                              caravan_test_catalog:register(C, <<"app">>,
                                                            #{id => Id, address => <<"10.0.0.1">>,
                                                              port => Port})
                      end,
                ok = Reg(<<"a">>, 4370),
                Source = {consul, Opts#{service => "app", basename => "app", wait => 60000,
                                        url => caravan_test_catalog:url(S)}},
                Ws = [begin
                          {ok, W} = caravan:watch(Source, self()),
                          ?assertMatch({members, [_]}, next_event(W, 5000)),
                          W
                      end || _ <- lists:seq(1, N)],
                %% Every watch is blocked on the current index now.
                timer:sleep(500),
                ok = caravan_test_consul:reset_stats(S),
                ok = Reg(<<"b">>, 4371),
                [?assertMatch({members, [_, _]}, next_event(W, 5000)) || W <- Ws],
                timer:sleep(500),
                Stats = caravan_test_consul:stats(S),
                [caravan:unwatch(W) || W <- Ws],
                caravan_test_catalog:stop_server(S),
                Stats
        end,
    Cached = Upstream(#{}),
    Uncached = Upstream(#{cached => false}),
    ct:pal("after one change: cached ~p; uncached ~p", [Cached, Uncached]),
    ?assertMatch(#{requests := N, upstream_requests := 1, hits := 4}, Cached),
    ?assertMatch(#{requests := N, upstream_requests := N, hits := 0}, Uncached).

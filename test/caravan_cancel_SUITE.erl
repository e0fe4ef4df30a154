%%% Requests that end with their caller (docs/protocol.md, `cancel'): a
%%% caller killed, a caller's timeout and a stopped watch each end the
%%% request inside the C program, so that its HTTP slot and its connection
%%% are given back at once, not at the request's own deadline (up to wait +
%%% timeout for a blocking query). The server holds every query open
%%% (caravan_test_hold) and counts its open connections itself: a request
%%% the program let go of is a connection the server sees closed.
-module(caravan_cancel_SUITE).

-include_lib("common_test/include/ct.hrl").
-include_lib("stdlib/include/assert.hrl").

-export([all/0, suite/0]).
-export([init_per_testcase/2, end_per_testcase/2]).
-export([killed_caller_closes_its_connection/1, timed_out_caller_closes_its_connection/1,
         watch_churn_leaves_the_program_idle/1]).

-define(OWNER, caravan_lookup).
%% Above the program's 1,024 HTTP slots nine times over: without cancels
%% the churn fills them and every later request is `overload'.
-define(CYCLES, 10000).
%% Generous: the machine is shared, and these bound waits, not behaviour.
-define(WAIT_MS, 60000).

-spec suite() -> list().
suite() ->
    [{timetrap, {minutes, 10}}, {ct_hooks, [caravan_test_app]}].

-spec all() -> list().
all() ->
    [killed_caller_closes_its_connection, timed_out_caller_closes_its_connection,
     watch_churn_leaves_the_program_idle].

-spec init_per_testcase(atom(), list()) -> list().
init_per_testcase(_Case, Config) ->
    [{hold, caravan_test_hold:start()} | Config].

-spec end_per_testcase(atom(), list()) -> ok.
end_per_testcase(_Case, Config) ->
    caravan_test_hold:stop(?config(hold, Config)).

%%% helpers

info() ->
    {ok, Info} = caravan_port:call(?OWNER, info, #{}, 5000),
    Info.

%% As info(), but `busy' while the owner refuses calls (overload: under
%% ASan the program drains the churn's backlog slowly).
info_or_busy() ->
    case caravan_port:call(?OWNER, info, #{}, 5000) of
        {ok, Info} -> Info;
        {error, overload} -> busy
    end.

owner() ->
    {ok, Counters} = caravan_port:counters(?OWNER),
    Counters.

wait(Cond) -> caravan_test_peer:wait_until(Cond, ?WAIT_MS).

%% A blocking query the hold server will never answer.
held_query(Hold, Timeout) ->
    caravan_port:call(?OWNER, consul_health,
                      #{url => caravan_test_hold:url(Hold), service => <<"app">>, index => 7,
                        wait_ms => 600000, timeout_ms => 600000, proxy => none},
                      Timeout).

%% The program and its owner back where they were before the requests:
%% nothing in flight, every cancel the owner sent answered by the program.
idle() ->
    case info_or_busy() of
        busy -> busy;
        #{http_inflight := Http, dns_inflight := Dns, cancelled := C, cancel_noops := N} ->
            #{pending := Pending, monitors := Monitors, cancels_sent := Sent,
              unsent := Unsent} = owner(),
            {Http, Dns, Pending, Monitors, C + N =:= Sent andalso Unsent =:= 0}
    end.

%% Fun's result, asked again while the owner answers a bare `overload': its
%% pipe to the program is full (the churn outruns a slow, e.g. ASan, build),
%% which says nothing about the program's slots. The program's own refusal,
%% `{overload, Detail}' (every slot taken), is returned as it is, and fails.
retry_busy(Fun) -> retry_busy(Fun, 600).

retry_busy(Fun, 0) -> Fun();
retry_busy(Fun, N) ->
    case Fun() of
        {error, overload} -> timer:sleep(50), retry_busy(Fun, N - 1);
        Other -> Other
    end.

%%% cases

%% A caller killed mid-request: the program drops the transfer, and the
%% server sees the connection closed.
-spec killed_caller_closes_its_connection(list()) -> ok.
killed_caller_closes_its_connection(Config) ->
    Hold = ?config(hold, Config),
    Caller = spawn(fun() -> held_query(Hold, 600000) end),
    ok = wait(fun() -> caravan_test_hold:open(Hold) =:= 1 end),
    ?assertEqual(1, maps:get(http_inflight, info())),
    exit(Caller, kill),
    ok = wait(fun() -> caravan_test_hold:open(Hold) =:= 0 end),
    ok = wait(fun() -> idle() =:= {0, 0, 0, 0, true} end),
    ?assertEqual(1, caravan_test_hold:accepted(Hold)).

%% A caller's timeout ends the request in the program as well.
-spec timed_out_caller_closes_its_connection(list()) -> ok.
timed_out_caller_closes_its_connection(Config) ->
    Hold = ?config(hold, Config),
    ?assertEqual({error, timeout}, held_query(Hold, 300)),
    ok = wait(fun() -> caravan_test_hold:open(Hold) =:= 0 end),
    ok = wait(fun() -> idle() =:= {0, 0, 0, 0, true} end),
    ?assertEqual(1, caravan_test_hold:accepted(Hold)).

%% 10,000 watches started and stopped against a server that holds every
%% query open. Midway a DNS lookup and a Consul query are made: both are
%% answered (not `overload'). Afterwards the program has nothing in flight
%% and the server no connection open.
-spec watch_churn_leaves_the_program_idle(list()) -> ok.
watch_churn_leaves_the_program_idle(Config) ->
    Hold = ?config(hold, Config),
    Dns = caravan_test_dns_responder:start({consul, 3}),
    Consul = caravan_test_consul:start(#{}),
    ok = caravan_test_catalog:register(caravan_test_catalog:catalog(Consul), <<"web">>,
                                       #{id => <<"w1">>, address => <<"10.0.0.1">>,
                                         port => 4370}),
    Options = #{service => "app", basename => "app", wait => 600000,
                url => binary_to_list(caravan_test_hold:url(Hold))},
    Self = self(),
    Side = fun() ->
                   Srv = retry_busy(fun() ->
                                            caravan:lookup_srv(
                                              "web.service.consul",
                                              #{servers => [caravan_test_dns_responder:server(Dns)]})
                                    end),
                   Nodes = retry_busy(fun() ->
                                              caravan:discover(
                                                {consul, #{service => "web", basename => "web",
                                                           url => caravan_test_catalog:url(Consul)}})
                                      end),
                   Self ! {side, Srv, Nodes}
           end,
    Churn = fun(I) ->
                    {ok, W} = caravan:watch({consul, Options}, Self),
                    case I of
                        %% Midway, with the churn going on around them.
                        ?CYCLES div 2 -> spawn_link(Side);
                        _ -> ok
                    end,
                    ok = caravan:unwatch(W)
            end,
    lists:foreach(Churn, lists:seq(1, ?CYCLES)),
    receive
        {side, Srv, Nodes} ->
            ?assertMatch({ok, [_ | _]}, Srv),
            ?assertEqual({ok, ['web-4370@10.0.0.1']}, Nodes)
    after ?WAIT_MS -> ct:fail(no_side_requests)
    end,
    ok = wait(fun() -> idle() =:= {0, 0, 0, 0, true} end),
    ok = wait(fun() -> caravan_test_hold:open(Hold) =:= 0 end),
    #{cancelled := Cancelled} = info(),
    ct:log("~b watches: ~b connections accepted, ~b requests cancelled in the program, "
           "owner ~p", [?CYCLES, caravan_test_hold:accepted(Hold), Cancelled, owner()]),
    ?assert(Cancelled > 0),
    caravan_test_dns_responder:stop(Dns),
    caravan_test_catalog:stop_server(Consul).

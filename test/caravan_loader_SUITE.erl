%%% The libcurl loader and its parked requests (issue 23), attacked with
%%% randomized orders against the real program: HTTP requests (consul_health,
%%% nomad_services, consul_register: a PUT), cancels of any id (parked, answered, never sent, twice), short deadlines
%%% that pass while parked, pings, info, and stdin closed at any point, both
%%% with a stand-in libcurl.so.4 that loads slowly and then fails and with
%%% the real one against the Consul and Nomad test servers. Each run checks
%%% the protocol's promises (docs/protocol.md): one reply per request not
%%% cancelled, none after its cancel, pongs in order, the cancel counters,
%%% exit status 0 (86: a sanitizer report, under the ASan program). And by
%%% hand: past the 1,024 slots, PUT bodies parked and replayed, the owner and
%%% its callers going while requests are parked.
%%%
%%% CARAVAN_LOADER_SEED=N replays the runs of a seed (ct:log prints it; the
%%% program's own timing still varies), CARAVAN_LOADER_RUNS=N sets the runs.
-module(caravan_loader_SUITE).

-include_lib("common_test/include/ct.hrl").
-include_lib("stdlib/include/assert.hrl").

-export([all/0, suite/0, init_per_suite/1, end_per_suite/1]).
-export([init_per_testcase/2, end_per_testcase/2]).
-export([random_orders_while_the_load_fails/1, random_orders_while_libcurl_loads/1,
         parked_requests_are_bounded_by_the_http_slots/1,
         owner_and_callers_go_while_requests_are_parked/1,
         puts_parked_during_a_real_load_arrive_whole/1, a_failing_load_is_logged_once/1]).

-define(LOAD_FAILED, <<"libcurl could not be loaded (is libcurl4 installed?): "
                       "libcurl.so.4 lacks curl_global_init">>).
-define(RUNS, 30).
%% No new run starts after this long; each run is bounded on its own too.
-define(BUDGET_MS, 90000).
-define(RUN_MS, 15000).
%% Ids above this were never sent.
-define(NEVER_SENT, 1000000000).
-define(OWNER, caravan_loader_owner).

-type mode() :: slow | real.
%% A run: the program, what was sent (id => {Op, Args}), what came back.
-type run() :: #{p := port(), _ => _}.

-spec all() -> [atom()].
all() -> [random_orders_while_the_load_fails, random_orders_while_libcurl_loads,
          parked_requests_are_bounded_by_the_http_slots,
          owner_and_callers_go_while_requests_are_parked,
          puts_parked_during_a_real_load_arrive_whole, a_failing_load_is_logged_once].

-spec suite() -> list().
suite() -> [{timetrap, {minutes, 5}}].

-spec init_per_suite(list()) -> list() | {skip, string()}.
init_per_suite(Config) ->
    case caravan_test_slow_libcurl:build(?config(priv_dir, Config)) of
        {ok, Dir} -> [{slow_libcurl_dir, Dir} | Config];
        Skip -> Skip
    end.

-spec end_per_suite(list()) -> ok.
end_per_suite(_Config) -> ok.

-spec init_per_testcase(atom(), list()) -> list().
init_per_testcase(Case, Config) when Case =:= random_orders_while_libcurl_loads;
                                     Case =:= puts_parked_during_a_real_load_arrive_whole ->
    Consul = caravan_test_consul:start(#{}),
    Nomad = caravan_test_nomad:start(#{}),
    [ok = caravan_test_catalog:register(caravan_test_catalog:catalog(S), <<"app">>,
                                        #{id => <<"i1">>, address => <<"127.0.0.1">>,
                                          port => 4370})
     || S <- [Consul, Nomad]],
    [{consul, Consul}, {nomad, Nomad} | Config];
init_per_testcase(_, Config) ->
    Config.

-spec end_per_testcase(atom(), list()) -> ok.
end_per_testcase(_, Config) ->
    [catch caravan_test_catalog:stop_server(S)
     || K <- [consul, nomad], S <- [?config(K, Config)], S =/= undefined],
    ok.

%%% The cases

%% The stand-in libcurl: every HTTP request is parked (a request after a
%% failed load starts the next load), and is answered the load's error or,
%% its deadline passed while parked, timeout.
-spec random_orders_while_the_load_fails(list()) -> ok.
random_orders_while_the_load_fails(Config) ->
    runs(Config, slow).

%% The real libcurl: requests parked during the load and sent after it are
%% answered by the test servers; registrations arrive with their bodies whole.
-spec random_orders_while_libcurl_loads(list()) -> ok.
random_orders_while_libcurl_loads(Config) ->
    runs(Config, real).

%% 1,100 requests while the stand-in loads for 3 s: 1,024 are parked (the
%% HTTP slots), the rest answered overload at once, before the pong sent
%% behind them; a cancel frees a slot for the next request; when the load
%% fails the parked ones get its error in the order they came.
-spec parked_requests_are_bounded_by_the_http_slots(list()) -> ok.
parked_requests_are_bounded_by_the_http_slots(Config) ->
    RcFile = filename:join(?config(priv_dir, Config), "bounded.rc"),
    _ = file:delete(RcFile),
    P = start_program(caravan_test_slow_libcurl:env(?config(slow_libcurl_dir, Config), 3000),
                      RcFile),
    Args = #{url => <<"http://127.0.0.1:1">>, service => <<"app">>, timeout_ms => 60000,
             proxy => none},
    [port_command(P, term_to_binary({Id, consul_health, Args})) || Id <- lists:seq(1, 1100)],
    port_command(P, term_to_binary({1101, ping, #{}})),
    Early = [next(P) || _ <- lists:seq(1025, 1101)],
    ?assertEqual([{Id, error, overload} || Id <- lists:seq(1025, 1100)] ++ [{1101, ok, pong}],
                 [case R of
                      {Id, error, {overload, _}} -> {Id, error, overload};
                      _ -> R
                  end || R <- Early]),
    port_command(P, term_to_binary({1102, info, #{}})),
    {1102, ok, #{http_inflight := 1024}} = next(P),
    port_command(P, term_to_binary({1103, cancel, #{id => 500}})),
    ?assertEqual({1103, ok, cancelled}, next(P)),
    port_command(P, term_to_binary({1104, consul_health, Args})),
    port_command(P, term_to_binary({1105, consul_health, Args})),
    ?assertMatch({1105, error, {overload, _}}, next(P)),
    Failed = [next(P) || _ <- lists:seq(1, 1024)],
    ?assertEqual((lists:seq(1, 1024) -- [500]) ++ [1104],
                 [Id || {Id, error, {http_error, ?LOAD_FAILED}} <- Failed]),
    port_command(P, term_to_binary({1106, info, #{}})),
    {1106, ok, #{http_inflight := 0, cancelled := 1}} = next(P),
    port_close(P),
    ?assertEqual({ok, <<"0\n">>}, exit_status(RcFile)).

%% The first HTTP request starts the load, so it is always parked: a
%% registration at Consul's limits (64 tags of 255 bytes, 64 meta values
%% of 512: a ~50 KB body), a deregistration (a PUT without a body) and a
%% second registration, all sent at once, each reach the agent whole. (They
%% start in order but run side by side, as they would once loaded: a
%% deregistration of the first would race it, so it names another id.)
-spec puts_parked_during_a_real_load_arrive_whole(list()) -> ok.
puts_parked_during_a_real_load_arrive_whole(Config) ->
    RcFile = filename:join(?config(priv_dir, Config), "puts.rc"),
    _ = file:delete(RcFile),
    P = start_program([], RcFile),
    Url = list_to_binary(caravan_test_catalog:url(?config(consul, Config))),
    Tags = [binary:copy(<<($a + T rem 26)>>, 255) || T <- lists:seq(1, 64)],
    Meta = maps:from_list([{<<"key", (integer_to_binary(T))/binary>>,
                            binary:copy(<<($A + T rem 26)>>, 512)} || T <- lists:seq(1, 64)]),
    Reg = #{url => Url, id => <<"big">>, name => <<"app">>, address => <<"127.0.0.1">>,
            port => 4370, tags => Tags, meta => Meta, proxy => none},
    Sent = [{1, consul_register, Reg},
            {2, consul_deregister, #{url => Url, id => <<"nobody">>, proxy => none}},
            {3, consul_register, Reg#{id => <<"small">>, tags => [<<"x">>], meta => #{}}}],
    [port_command(P, term_to_binary(T)) || T <- Sent],
    ?assertMatch([{1, ok, 200}, {2, error, {not_found, <<"HTTP 404: ", _/binary>>}}, {3, ok, 200}],
                 lists:sort([next(P) || _ <- Sent])),
    Agent = caravan_test_consul:agent(?config(consul, Config)),
    Bodies = maps:from_list([{maps:get(<<"ID">>, B), B}
                             || B <- caravan_test_consul_agent:bodies(Agent)]),
    ?assertEqual([<<"big">>, <<"small">>], lists:sort(maps:keys(Bodies))),
    #{<<"big">> := Big, <<"small">> := Small} = Bodies,
    ?assertEqual({Tags, Meta}, {maps:get(<<"Tags">>, Big), maps:get(<<"Meta">>, Big)}),
    ?assertEqual([<<"x">>], maps:get(<<"Tags">>, Small)),
    port_close(P),
    ?assertEqual({ok, <<"0\n">>}, exit_status(RcFile)).

%% Through the owner (caravan_port), a 30 s load: a caller killed and a
%% caller whose timeout fires have their parked requests cancelled (freed,
%% counted); the owner killed with one still parked closes the program's
%% stdin, and it exits 0 at once, its loader still inside dlopen.
-spec owner_and_callers_go_while_requests_are_parked(list()) -> ok.
owner_and_callers_go_while_requests_are_parked(Config) ->
    Dir = ?config(priv_dir, Config),
    RcFile = filename:join(Dir, "owner.rc"),
    _ = file:delete(RcFile),
    Script = filename:join(Dir, "slow_program.sh"),
    {ok, Program} = caravan_config:port_program(),
    ok = file:write_file(Script, ["#!/bin/sh\n"
                                  "LD_LIBRARY_PATH='", ?config(slow_libcurl_dir, Config), "' "
                                  "SLOW_LIBCURL_MS=30000 "
                                  "ASAN_OPTIONS=\"${ASAN_OPTIONS:+$ASAN_OPTIONS:}exitcode=86\" '",
                                  Program, "'\necho $? > '", RcFile, "'\n"]),
    ok = file:change_mode(Script, 8#755),
    {ok, Owner} = caravan_port:start_link(?OWNER, #{program => Script}),
    unlink(Owner),
    Args = #{url => <<"http://127.0.0.1:1">>, service => <<"app">>, timeout_ms => 60000,
             proxy => none},
    Self = self(),
    Call = fun(Timeout) ->
                   spawn(fun() ->
                                 R = try caravan_port:call(?OWNER, consul_health, Args, Timeout)
                                     catch exit:Why -> {exit, Why}
                                     end,
                                 Self ! {self(), R}
                         end)
           end,
    A = Call(60000),
    B = Call(60000),
    %% Both parked (the callers may reach the owner after this process).
    ok = until_info(fun(#{http_inflight := N, cancelled := C}) -> {N, C} =:= {2, 0} end, 200),
    ?assertEqual({ok, pong}, caravan_port:call(?OWNER, ping, #{}, 5000)),
    exit(A, kill),
    ok = until_info(fun(#{http_inflight := N, cancelled := C}) -> {N, C} =:= {1, 1} end, 200),
    C = Call(200),
    receive {C, RC} -> ?assertEqual({error, timeout}, RC)
    after 10000 -> ct:fail(no_timeout)
    end,
    ok = until_info(fun(#{http_inflight := N, cancelled := Cs}) -> {N, Cs} =:= {1, 2} end, 200),
    exit(Owner, kill),
    receive {B, RB} -> ct:log("the parked caller when its owner was killed: ~p", [RB])
    after 10000 -> ct:fail(caller_left_waiting)
    end,
    ?assertEqual({ok, <<"0\n">>}, exit_status(RcFile, 200)).

-spec until_info(fun((map()) -> boolean()), non_neg_integer()) -> ok | {gave_up, term()}.
until_info(_Pred, 0) ->
    {gave_up, caravan_port:call(?OWNER, info, #{}, 5000)};
until_info(Pred, Tries) ->
    {ok, Info} = caravan_port:call(?OWNER, info, #{}, 5000),
    case Pred(Info) of
        true -> ok;
        false -> timer:sleep(25), until_info(Pred, Tries - 1)
    end.

-spec next(port()) -> term().
next(P) ->
    receive
        {P, {data, B}} -> binary_to_term(B)
    after 20000 -> ct:fail(no_reply)
    end.

%%% Runs

-spec runs(list(), mode()) -> ok.
runs(Config, Mode) ->
    Seed = case os:getenv("CARAVAN_LOADER_SEED") of
               false -> erlang:unique_integer([positive]) bxor os:system_time(microsecond);
               S -> list_to_integer(S)
           end,
    Runs = case os:getenv("CARAVAN_LOADER_RUNS") of
               false -> ?RUNS;
               R -> list_to_integer(R)
           end,
    ct:log("seed ~b (CARAVAN_LOADER_SEED=~b to replay), ~b runs", [Seed, Seed, Runs]),
    T0 = erlang:monotonic_time(millisecond),
    Done = runs(Config, Mode, Seed, 1, Runs, T0),
    ct:log("~b runs done in ~b ms", [Done, erlang:monotonic_time(millisecond) - T0]),
    ?assert(Done >= min(Runs, 5)),
    ok.

-spec runs(list(), mode(), integer(), pos_integer(), non_neg_integer(), integer()) ->
          non_neg_integer().
runs(_Config, _Mode, _Seed, K, Runs, _T0) when K > Runs ->
    Runs;
runs(Config, Mode, Seed, K, Runs, T0) ->
    case erlang:monotonic_time(millisecond) - T0 > ?BUDGET_MS of
        true ->
            ct:log("time budget spent after ~b runs", [K - 1]),
            K - 1;
        false ->
            %% One integer (rand mixes it well; a tuple's later elements
            %% barely change the stream): run K of seed S is S * 1000 + K.
            _ = rand:seed(exsss, Seed * 1000 + K),
            try one_run(Config, Mode, K)
            catch C:E:St ->
                    ct:log("run ~b of seed ~b failed", [K, Seed]),
                    erlang:raise(C, E, St)
            end,
            runs(Config, Mode, Seed, K + 1, Runs, T0)
    end.

%% One program, one random sequence, every promise checked.
-spec one_run(list(), mode(), pos_integer()) -> ok.
one_run(Config, Mode, K) ->
    Dir = ?config(priv_dir, Config),
    RcFile = filename:join(Dir, "run-" ++ atom_to_list(Mode) ++ "-" ++ integer_to_list(K) ++ ".rc"),
    _ = file:delete(RcFile),
    SlowMs = 20 + rand:uniform(300),
    Env = case Mode of
              slow -> caravan_test_slow_libcurl:env(?config(slow_libcurl_dir, Config), SlowMs);
              real -> []
          end,
    P = start_program(Env, RcFile),
    Steps = 5 + rand:uniform(40),
    CloseAt = case rand:uniform(6) of
                  1 -> 1 + rand:uniform(Steps);
                  _ -> never
              end,
    S0 = #{p => P, rc_file => RcFile, mode => Mode, config => Config, next => 1, sent => #{},
           replies => [], n => 0},
    S1 = steps(S0, 1, Steps, CloseAt),
    Closed = CloseAt =/= never,
    S2 = case Closed of
             true -> S1;
             false -> settle(S1, erlang:monotonic_time(millisecond) + ?RUN_MS)
         end,
    check(S2, Closed),
    S3 = case Closed of
             true -> S2;
             false -> final_info(S2)
         end,
    _ = [port_close(P) || not Closed],
    Rc = exit_status(RcFile),
    Rs = [R || {_, R} <- replies(S3)],
    ct:log("run ~b (~p, stand-in load ~b ms): ~b steps~s, ~b packets, ~b replies (~b cancelled, "
           "~b not_found, ~b timeouts, ~b load failures, ~b ok), exit ~p",
           [K, Mode, SlowMs, Steps, case Closed of true -> ", stdin closed"; false -> "" end,
            maps:get(next, S3) - 1, length(Rs), length([x || {_, ok, cancelled} <- Rs]),
            length([x || {_, ok, not_found} <- Rs]), length([x || {_, error, {timeout, _}} <- Rs]),
            length([x || {_, error, {http_error, ?LOAD_FAILED}} <- Rs]),
            length([x || {_, ok, M} <- Rs, M =:= 200 orelse is_map(M)]), Rc]),
    ?assertEqual({ok, <<"0\n">>}, Rc, "exit status 86 is a sanitizer report"),
    ok.

%% Every request after a failed load tries the load again; its reason goes
%% to stderr once, not once per try (a watch retrying against a host
%% without libcurl wrote a line every few seconds for as long as it ran).
%% Five requests one after the other: five loads, each failed, one line.
-spec a_failing_load_is_logged_once(list()) -> ok.
a_failing_load_is_logged_once(Config) ->
    {ok, Program} = caravan_config:port_program(),
    ErrFile = filename:join(?config(priv_dir, Config), "logged_once.stderr"),
    P = open_port({spawn_executable, "/bin/sh"},
                  [{args, ["-c", "exec \"$0\" 2>\"$1\"", Program, ErrFile]},
                   {env, caravan_test_slow_libcurl:env(?config(slow_libcurl_dir, Config), 20)},
                   {packet, 4}, binary, use_stdio]),
    Args = #{url => <<"http://127.0.0.1:1">>, service => <<"app">>, proxy => none},
    Replies = [begin
                   port_command(P, term_to_binary({Id, consul_health, Args})),
                   next(P)
               end || Id <- lists:seq(1, 5)],
    port_close(P),
    ?assertEqual(lists:duplicate(5, http_error),
                 [Reason || {_, error, {Reason, _}} <- Replies]),
    {ok, Err} = file:read_file(ErrFile),
    Lines = [L || L <- binary:split(Err, <<"\n">>, [global]),
                  binary:match(L, <<"lacks curl_global_init">>) =/= nomatch],
    ?assertEqual(1, length(Lines)).

-spec start_program([{string(), string()}], file:filename()) -> port().
start_program(Env, RcFile) ->
    {ok, Program} = caravan_config:port_program(),
    open_port({spawn_executable, "/bin/sh"},
              [{args, ["-c", "ASAN_OPTIONS=\"${ASAN_OPTIONS:+$ASAN_OPTIONS:}exitcode=86\" "
                       "\"$0\"; echo $? > \"$1\"", Program, RcFile]},
               {env, Env}, {packet, 4}, binary, use_stdio]).

%% The program's exit status, once the shell around it has written it.
-spec exit_status(file:filename()) -> {ok, binary()} | {still_running, term()}.
exit_status(RcFile) ->
    exit_status(RcFile, 400).

-spec exit_status(file:filename(), non_neg_integer()) ->
          {ok, binary()} | {still_running, term()}.
exit_status(RcFile, 0) ->
    {still_running, file:read_file(RcFile)};
exit_status(RcFile, Tries) ->
    case file:read_file(RcFile) of
        {ok, <<_, _/binary>>} = Rc -> Rc;
        _ -> timer:sleep(25), exit_status(RcFile, Tries - 1)
    end.

%% Stdin closes before step CloseAt (at most Steps + 1: after the last).
-spec steps(run(), pos_integer(), pos_integer(), pos_integer() | never) -> run().
steps(#{p := P} = S0, CloseAt, _Steps, CloseAt) ->
    S = collect(S0, 0),
    port_close(P),
    S;
steps(S, I, Steps, _CloseAt) when I > Steps ->
    S;
steps(S, I, Steps, CloseAt) ->
    steps(step(collect(S, 0)), I + 1, Steps, CloseAt).

%% One random step: a request, a cancel, a ping, an info or a pause.
-spec step(run()) -> run().
step(S) ->
    case rand:uniform(20) of
        N when N =< 8 -> send(S, http_op(S));
        N when N =< 13 -> send(S, {cancel, #{id => cancel_target(S)}});
        N when N =< 16 -> send(S, {ping, #{}});
        N when N =< 17 -> send(S, {info, #{}});
        _ -> collect(S, rand:uniform(60))
    end.

-spec http_op(run()) -> {atom(), map()}.
http_op(#{mode := Mode, config := Config}) ->
    Timeout = case rand:uniform(3) of
                  1 -> rand:uniform(150);
                  _ -> 8000
              end,
    {Consul, Nomad} = case Mode of
                          slow -> {<<"http://127.0.0.1:1">>, <<"http://127.0.0.1:1">>};
                          real -> {url(Config, consul), url(Config, nomad)}
                      end,
    Base = #{service => <<"app">>, timeout_ms => Timeout, proxy => none},
    case rand:uniform(3) of
        1 -> {consul_health, Base#{url => Consul}};
        2 -> {nomad_services, Base#{url => Nomad}};
        3 -> {consul_register, register_args(Consul, Timeout)}
    end.

%% A PUT with a body of up to ~30 KB: 0..63 tags, 0..19 meta pairs.
-spec register_args(binary(), pos_integer()) -> map().
register_args(Url, Timeout) ->
    Meta = [{<<"k", (integer_to_binary(T))/binary>>, tag(T)}
            || T <- lists:seq(1, rand:uniform(20) - 1)],
    #{url => Url, timeout_ms => Timeout, proxy => none,
      id => <<"app-", (integer_to_binary(rand:uniform(1000)))/binary>>,
      name => <<"app">>, address => <<"127.0.0.1">>, port => 4370 + rand:uniform(1000),
      tags => [tag(T) || T <- lists:seq(1, rand:uniform(64) - 1)],
      meta => maps:from_list(Meta)}.

-spec tag(pos_integer()) -> binary().
tag(T) ->
    binary:copy(<<"t", (integer_to_binary(T))/binary>>, rand:uniform(40)).

%% By address, or by name: then the request, started once libcurl is
%% loaded, first waits for c-ares (a cancel then meets it resolving).
-spec url(list(), consul | nomad) -> binary().
url(Config, Which) ->
    Url = list_to_binary(caravan_test_catalog:url(?config(Which, Config))),
    case rand:uniform(2) of
        1 -> Url;
        2 -> binary:replace(Url, <<"127.0.0.1">>, <<"localhost">>)
    end.

%% Any id: an HTTP request's (parked, answered or cancelled), another op's,
%% one cancelled already, one never sent.
-spec cancel_target(run()) -> pos_integer().
cancel_target(#{next := Next, sent := Sent}) ->
    Http = [Id || {Id, {Op, _}} <- maps:to_list(Sent), is_http(Op)],
    Cancelled = [T || {_, {cancel, #{id := T}}} <- maps:to_list(Sent)],
    Pick = fun([]) -> ?NEVER_SENT + rand:uniform(1000);
              (L) -> lists:nth(rand:uniform(length(L)), L)
           end,
    case rand:uniform(10) of
        N when N =< 5 -> Pick(Http);
        N when N =< 7 -> Pick(Cancelled);
        N when N =< 8, Next > 1 -> rand:uniform(Next - 1);
        _ -> ?NEVER_SENT + rand:uniform(1000)
    end.

-spec is_http(atom()) -> boolean().
is_http(Op) ->
    lists:member(Op, [consul_health, nomad_services, consul_register]).

-spec send(run(), {atom(), map()}) -> run().
send(#{p := P, next := Id, sent := Sent} = S, {Op, Args}) ->
    try port_command(P, term_to_binary({Id, Op, Args}))
    catch error:badarg -> ct:fail({program_exited, exit_status(maps:get(rc_file, S))})
    end,
    S#{next := Id + 1, sent := Sent#{Id => {Op, Args}}}.

%% Takes in the replies that came, waiting Ms for the first.
-spec collect(run(), non_neg_integer()) -> run().
collect(#{p := P, replies := Rs, n := N} = S, Ms) ->
    receive
        {P, {data, B}} -> collect(S#{replies := [{N, binary_to_term(B)} | Rs], n := N + 1}, 0)
    after Ms -> S
    end.

%% Waits until every request has its answer: each cancel and non-HTTP
%% request its reply, each HTTP request its reply or a `cancelled'.
-spec settle(run(), integer()) -> run().
settle(S, Deadline) ->
    case missing(S) of
        [] -> S;
        Missing ->
            Left = Deadline - erlang:monotonic_time(millisecond),
            case Left > 0 of
                true -> settle(collect(S, min(Left, 100)), Deadline);
                false -> ct:fail({no_reply_for, Missing, replies(S)})
            end
    end.

-spec missing(run()) -> [pos_integer()].
missing(#{sent := Sent} = S) ->
    Got = maps:from_list([{Id, R} || {_, R} <- replies(S), Id <- [element(1, R)]]),
    Cancelled = [T || {Id, {cancel, #{id := T}}} <- maps:to_list(Sent),
                      maps:get(Id, Got, none) =:= {Id, ok, cancelled}],
    [Id || Id <- lists:sort(maps:keys(Sent)), not is_map_key(Id, Got),
           not lists:member(Id, Cancelled)].

%% Replies in arrival order: {Seq, Reply}.
-spec replies(run()) -> [{non_neg_integer(), tuple()}].
replies(#{replies := Rs}) -> lists:reverse(Rs).

%% The promises, on whatever came (all of it, unless stdin was closed).
-spec check(run(), boolean()) -> ok.
check(#{sent := Sent, mode := Mode} = S, Closed) ->
    Rs = replies(S),
    %% One reply per id, each one a reply of a request sent.
    Ids = [element(1, R) || {_, R} <- Rs],
    ?assertEqual([], Ids -- lists:usort(Ids), "ids answered twice"),
    [?assert(is_map_key(Id, Sent), {reply_for_an_id_never_sent, Id}) || Id <- Ids],
    At = maps:from_list([{element(1, R), {Seq, R}} || {Seq, R} <- Rs]),
    [check_reply(Mode, maps:get(Id, Sent), R) || {_, R} <- Rs, Id <- [element(1, R)]],
    %% A cancel that ended a request: the request was sent before it, no
    %% other cancel ended it, and it never gets a reply. A not_found: the
    %% request (if sent) had been answered, and that reply came first.
    Cancels = [{Id, T, Result} || {Id, {cancel, #{id := T}}} <- lists:sort(maps:to_list(Sent)),
                                  {_, {_, ok, Result}} <- [maps:get(Id, At, none)]],
    [case Result of
         cancelled ->
             ?assert(T < Id andalso is_http(element(1, maps:get(T, Sent))), {ended, T, Id}),
             ?assertEqual(none, maps:get(T, At, none), {answered_after_cancelled, T, Id}),
             ?assertEqual([Id], [C || {C, T2, cancelled} <- Cancels, T2 =:= T],
                          {cancelled_twice, T});
         not_found when T < Id ->
             case maps:get(T, At, none) of
                 {TSeq, _} ->
                     {CSeq, _} = maps:get(Id, At),
                     ?assert(TSeq < CSeq, {reply_after_its_not_found, T, Id});
                 none ->
                     %% Not answered: then an earlier cancel ended it.
                     ?assertMatch([_], [C || {C, T2, cancelled} <- Cancels, T2 =:= T, C < Id],
                                  {not_found_for_a_live_request, T, Id})
             end;
         not_found ->
             ?assert(T >= ?NEVER_SENT orelse T >= Id, {not_found, T, Id})
     end || {Id, T, Result} <- Cancels],
    %% Pongs in the order of their pings.
    Pongs = [Id || {_, {Id, ok, pong}} <- Rs],
    ?assertEqual(lists:sort(Pongs), Pongs, "pongs out of order"),
    %% The load's error goes to parked requests in the order they came.
    Failed = [Id || {_, {Id, error, {http_error, ?LOAD_FAILED}}} <- Rs],
    ?assertEqual(lists:sort(Failed), Failed, "load failures out of order"),
    [check_body(S, Id) || Mode =:= real, {_, {Id, ok, 200}} <- Rs],
    %% Everything answered that was not cancelled.
    [?assertEqual([], missing(S)) || not Closed],
    ok.

-spec check_reply(mode(), {atom(), map()}, tuple()) -> ok.
check_reply(_, {ping, _}, R) -> ?assertMatch({_, ok, pong}, R);
check_reply(_, {info, _}, R) -> ?assertMatch({_, ok, #{http_inflight := _}}, R);
check_reply(_, {cancel, _}, R) ->
    ?assertMatch({_, ok, Res} when Res =:= cancelled orelse Res =:= not_found, R);
check_reply(Mode, {_, #{timeout_ms := T}}, {_, error, {timeout, Detail}} = R) ->
    %% Only short deadlines pass; while parked, the Detail says so.
    ?assert(T =< 150, {timeout_with_a_long_deadline, R}),
    Parked = <<"no answer within ", (integer_to_binary(T))/binary,
               " ms (libcurl was still loading)">>,
    ?assert(Mode =:= real orelse Detail =:= Parked, {wrong_timeout, R});
check_reply(slow, _, R) ->
    ?assertMatch({_, error, {http_error, ?LOAD_FAILED}}, R);
check_reply(real, {consul_register, _}, R) ->
    ?assertMatch({_, ok, 200}, R);
check_reply(real, _, R) ->
    ?assertMatch({_, ok, #{members := [_]}}, R).

%% A PUT parked and replayed: the agent got its body whole.
-spec check_body(run(), pos_integer()) -> ok.
check_body(#{sent := Sent, config := Config}, Id) ->
    case maps:get(Id, Sent) of
        {consul_register, #{port := Port, tags := Tags, meta := Meta}} ->
            Agent = caravan_test_consul:agent(?config(consul, Config)),
            Bodies = [B || B = #{<<"Port">> := P} <- caravan_test_consul_agent:bodies(Agent),
                           P =:= Port],
            ?assert(lists:any(fun(B) -> maps:get(<<"Tags">>, B, []) =:= Tags andalso
                                            maps:get(<<"Meta">>, B, #{}) =:= Meta
                              end, Bodies), {body_not_received, Id});
        _ -> ok
    end.

%% The counters, once everything is answered: this info is the next reply
%% (nothing stray comes before it), every slot is free, and the cancels
%% are counted as they were answered.
-spec final_info(run()) -> run().
final_info(#{sent := Sent} = S0) ->
    S = send(S0, {info, #{}}),
    Id = maps:get(next, S) - 1,
    #{p := P} = S,
    receive
        {P, {data, B}} ->
            R = binary_to_term(B),
            ?assertMatch({Id, ok, #{}}, R, "a stray reply before the last info"),
            {Id, ok, Info} = R,
            Results = [Res || {_, {C, ok, Res}} <- replies(S),
                              {cancel, _} <- [maps:get(C, Sent)]],
            ?assertMatch(#{http_inflight := 0, requests := Id}, Info),
            ?assertEqual({length([x || cancelled <- Results]),
                          length([x || not_found <- Results])},
                         {maps:get(cancelled, Info), maps:get(cancel_noops, Info)}),
            S
    after 10000 -> ct:fail(no_reply_to_the_last_info)
    end.

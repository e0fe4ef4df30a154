%%% Helpers shared by the Common Test suites: real BEAM nodes started with
%%% OTP's peer, distribution through caravan_epmd (never epmd), controlled
%%% over standard_io so the test runner itself needs no distribution.
-module(caravan_test_peer).

-export([start/3]).
-export([start/4]).
-export([stop/1]).
-export([call/4]).
-export([free_port/0]).
-export([free_port/1]).
-export([assert_no_epmd/0, describe_epmd/1]).
-export([kill9/1]).
-export([epmd_less_args/0]).
-export([test_dirs/0]).
-export([wait_until/2]).
-export([sees/1, wait_mesh/2]).
-export([restarts_scheduled/2]).
-export([start_tracked/4, start_caravan/4, untrack/1, stop_tracked/0]).
-export([interface_args/1]).

-define(COOKIE, "caravan-test-cookie").
%% The process dictionary key of the nodes start_tracked/4 started.
-define(TRACKED, {?MODULE, tracked}).

%% @doc Starts `Name@Host' with caravan as its epmd module.
-spec start(string(), string(), [string()]) -> {pid(), node()}.
start(Name, Host, ExtraArgs) ->
    start(Name, Host, ExtraArgs, #{}).

-spec start(string(), string(), [string()], map()) -> {pid(), node()}.
start(Name, Host, ExtraArgs, Options) ->
    Longnames = maps:get(longnames, Options, true),
    Base = #{name => Name,
             host => Host,
             longnames => Longnames,
             connection => standard_io,
             wait_boot => 30000,
             args => epmd_less_args() ++ ExtraArgs},
    {ok, Peer, Node} = peer:start(maps:merge(Base, maps:without([longnames], Options))),
    {Peer, Node}.

%% @doc The flags every test node runs with: no epmd started, caravan's
%% epmd module, caravan's code, a shared cookie. The test modules come last
%% on the path (rebar3 ct compiles a second copy of the application there;
%% ebin, which has priv beside it, must win): these support modules, and
%% the suites' in the folder above (a suite's fun runs on a test node).
-spec epmd_less_args() -> [string()].
epmd_less_args() ->
    ["-start_epmd", "false", "-epmd_module", "caravan_epmd",
     "-pa", filename:join(code:lib_dir(caravan), "ebin")]
        ++ lists:append([["-pz", Dir] || Dir <- test_dirs()])
        ++ ["-setcookie", ?COOKIE].

%% @doc This module's folder, and the suites' above it when it is test/support.
-spec test_dirs() -> [file:filename()].
test_dirs() ->
    Dir = filename:dirname(code:which(?MODULE)),
    case filename:basename(Dir) of
        "support" -> [Dir, filename:dirname(Dir)];
        _ -> [Dir]
    end.

-spec stop(pid()) -> ok.
stop(Peer) ->
    try peer:stop(Peer) catch exit:_ -> ok end.

%% @doc As start/4, and the node is remembered in the calling process (the
%% test case's, which end_per_testcase shares) until stop_tracked/0 stops it.
-spec start_tracked(string(), string(), [string()], map()) -> {pid(), node()}.
start_tracked(Name, Host, ExtraArgs, Options) ->
    Node = start(Name, Host, ExtraArgs, Options),
    put(?TRACKED, [Node | tracked()]),
    Node.

%% @doc As start_tracked/4, with the caravan application started on the node.
-spec start_caravan(string(), string(), [string()], map()) -> {pid(), node()}.
start_caravan(Name, Host, ExtraArgs, Options) ->
    {P, _} = Node = start_tracked(Name, Host, ExtraArgs, Options),
    {ok, _} = call(P, application, ensure_all_started, [caravan]),
    Node.

%% @doc Forgets a tracked node that a test stopped (or killed) itself.
-spec untrack({pid(), node()}) -> ok.
untrack(Node) ->
    put(?TRACKED, tracked() -- [Node]),
    ok.

%% @doc Stops every node start_tracked/4 started in this process and not
%% untracked since, and forgets them.
-spec stop_tracked() -> ok.
stop_tracked() ->
    [stop(P) || {P, _} <- tracked()],
    erase(?TRACKED),
    ok.

-spec tracked() -> [{pid(), node()}].
tracked() ->
    case get(?TRACKED) of
        undefined -> [];
        Nodes -> Nodes
    end.

%% @doc The flags that make a test node listen on the IPv4 address Ip only.
-spec interface_args(string()) -> [string()].
interface_args(Ip) ->
    ["-kernel", "inet_dist_use_interface", "{" ++ lists:map(fun($.) -> $,; (C) -> C end, Ip) ++ "}"].

-spec call(pid(), module(), atom(), [term()]) -> term().
call(Peer, M, F, A) ->
    peer:call(Peer, M, F, A, 15000).

%% @doc A TCP port for a test node to listen on.
%%
%% Not one the kernel picks (listen on 0): such a port comes from the
%% ephemeral range, and once closed the kernel may hand it to any other
%% process's connection before the node binds it. This picks at random
%% below the ephemeral range (net.ipv4.ip_local_port_range), where the kernel
%% never assigns ports by itself, and checks it is free both on Ip and on
%% the wildcard address, which is what a node listens on by default.
-spec free_port() -> inet:port_number().
free_port() -> free_port({127, 0, 0, 1}).

-spec free_port(inet:ip_address()) -> inet:port_number().
free_port(Ip) ->
    free_port(Ip, 200).

free_port(_Ip, 0) ->
    error(no_free_port);
free_port(Ip, Tries) ->
    Port = 10000 + rand:uniform(ephemeral_low() - 10001),
    Any = case tuple_size(Ip) of
              4 -> {0, 0, 0, 0};
              8 -> {0, 0, 0, 0, 0, 0, 0, 0}
          end,
    case lists:all(fun(A) -> can_listen(A, Port) end, [Ip, Any]) of
        true -> Port;
        false -> free_port(Ip, Tries - 1)
    end.

can_listen(Ip, Port) ->
    case gen_tcp:listen(Port, [{ip, Ip}, {reuseaddr, true}]) of
        {ok, S} -> ok = gen_tcp:close(S), true;
        {error, _} -> false
    end.

ephemeral_low() ->
    case file:read_file("/proc/sys/net/ipv4/ip_local_port_range") of
        {ok, Text} ->
            case string:to_integer(string:trim(Text)) of
                {Low, _} when is_integer(Low), Low > 12000 -> Low;
                _ -> 32768
            end;
        {error, _} -> 32768
    end.

%% @doc Fails if any epmd process exists on this machine.
%% @doc Fails when an epmd runs: it would make epmd-less tests pass for the
%% wrong reason. The reason names each epmd's pid, user and command line and
%% what holds port 4369, so that whoever reads it sees it is no test's (the
%% tests never start one) and can stop it by its pid.
-spec assert_no_epmd() -> ok.
assert_no_epmd() ->
    case string:lexemes(os:cmd("pgrep -x epmd"), "\n") of
        [] -> ok;
        Pids -> error({epmd_running, describe_epmd(Pids)})
    end.

%% @doc The text assert_no_epmd/0 fails with, for these OS pids.
-spec describe_epmd([string()]) -> string().
describe_epmd(Pids) ->
    %% One line: Common Test prints the reason with ~p.
    Lines = fun(Cmd) -> lists:join("; ", [string:trim(L)
                                          || L <- string:lexemes(os:cmd(Cmd), "\n")]) end,
    Procs = Lines("ps -o pid=,ppid=,user=,args= -p " ++ lists:join(",", Pids)),
    Port = case Lines("ss -Hltnp 'sport = :4369' 2>/dev/null") of
               [] -> "nothing listening that this user may see";
               Listening -> Listening
           end,
    lists:flatten(io_lib:format("an epmd started outside the tests is running (pid ppid user "
                                "command line): ~ts. Port 4369: ~ts. Stop it by its pid to run "
                                "the epmd-less tests", [Procs, Port])).

-spec kill9(non_neg_integer()) -> ok.
kill9(OsPid) ->
    "" = os:cmd("kill -9 " ++ integer_to_list(OsPid)),
    ok.

%% @doc Polls Fun every 20 ms until it returns true, at most TimeoutMs.
-spec wait_until(fun(() -> boolean()), non_neg_integer()) -> ok.
wait_until(Fun, TimeoutMs) ->
    Deadline = erlang:monotonic_time(millisecond) + TimeoutMs,
    wait_loop(Fun, Deadline).

wait_loop(Fun, Deadline) ->
    case Fun() of
        true -> ok;
        false ->
            case erlang:monotonic_time(millisecond) > Deadline of
                true -> error(wait_until_timeout);
                false -> timer:sleep(20), wait_loop(Fun, Deadline)
            end
    end.

%% @doc The delays of the next N restarts the port owner Owner (a pid or a
%% registered name in this node) schedules: its
%% erlang:send_after(Delay, self(), restart) calls, traced. A backoff
%% counted, rather than guessed from what a sleep let happen. Fails after
%% 20 s without the N-th.
-spec restarts_scheduled(pid() | atom(), pos_integer()) -> [non_neg_integer()].
restarts_scheduled(Name, N) when is_atom(Name) ->
    restarts_scheduled(whereis(Name), N);
restarts_scheduled(Owner, N) when is_pid(Owner) ->
    1 = erlang:trace(Owner, true, [call, {tracer, self()}]),
    _ = erlang:trace_pattern({erlang, send_after, 3}, [{['_', '_', restart], [], []}], [local]),
    try
        [receive {trace, Owner, call, {erlang, send_after, [Delay, _, restart]}} -> Delay
         after 20000 -> error({restarts_seen, K - 1})
         end || K <- lists:seq(1, N)]
    after
        _ = erlang:trace_pattern({erlang, send_after, 3}, false, [local]),
        _ = erlang:trace(Owner, false, [call]),
        flush_traces(Owner)
    end.

flush_traces(Owner) ->
    receive {trace, Owner, _, _} -> flush_traces(Owner) after 0 -> ok end.

%% @doc The nodes a test node is connected to, sorted.
-spec sees({pid(), node()}) -> [node()].
sees({P, _}) -> lists:sort(call(P, erlang, nodes, [])).

%% @doc Until every node of Nodes sees exactly the others (a full mesh).
-spec wait_mesh([{pid(), node()}], pos_integer()) -> ok.
wait_mesh(Nodes, TimeoutMs) ->
    Names = [N || {_, N} <- Nodes],
    wait_until(fun() -> lists:all(fun({_, N} = Node) -> sees(Node) =:= lists:sort(Names -- [N]) end,
                                  Nodes) end,
               TimeoutMs).

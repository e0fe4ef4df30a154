%%% Releases that use caravan, built offline and run for real: the rebar3
%%% (relx) release in examples/hello_rebar3 and the Mix release in
%%% examples/hello_mix. Three instances of each start as daemons, named
%%% hello-PORT@127.0.0.1, and form a cluster from a real BIND; rpc and the
%%% remote console work; they stop; no epmd ever runs.
%%% Run alone with `CT_SUITES=caravan_release_SUITE make ct`.
-module(caravan_release_SUITE).

-include_lib("common_test/include/ct.hrl").
-include_lib("stdlib/include/assert.hrl").

-export([all/0, groups/0, suite/0]).
-export([init_per_suite/1, end_per_suite/1]).
-export([init_per_group/2, end_per_group/2]).
-export([relx_cluster_forms/1, relx_rpc_and_remote_console/1,
         mix_cluster_forms/1, mix_rpc_and_remote/1,
         quick_start_rebar3/1, quick_start_mix/1]).

-define(COOKIE, "caravan-release-test").

suite() ->
    [{timetrap, {minutes, 5}}].

all() ->
    [{group, relx}, {group, mix}, {group, quick_start}].

groups() ->
    [{relx, [sequence], [relx_cluster_forms, relx_rpc_and_remote_console]},
     {mix, [sequence], [mix_cluster_forms, mix_rpc_and_remote]},
     {quick_start, [], [quick_start_rebar3, quick_start_mix]}].

init_per_suite(Config) ->
    ok = caravan_test_peer:assert_no_epmd(),
    %% This file is test/caravan_release_SUITE.erl in the project.
    [{project, filename:dirname(filename:dirname(?FILE))} | Config].

end_per_suite(_Config) ->
    ok = caravan_test_peer:assert_no_epmd().

init_per_group(quick_start, Config) ->
    Config;
init_per_group(Group, Config) ->
    Project = ?config(project, Config),
    Build = case Group of
                relx -> {filename:join(Project, "examples/hello_rebar3"), "rebar3 release",
                         "_build/default/rel/hello", "hello"};
                mix -> {filename:join(Project, "examples/hello_mix"),
                        "MIX_ENV=prod MIX_REBAR3=/usr/bin/rebar3 mix release --overwrite",
                        "_build/prod/rel/hello_mix", "hello_mix"}
            end,
    case Group =:= mix andalso os:find_executable("mix") =:= false of
        true -> {skip, "mix is not installed (make deps installs Debian's elixir)"};
        false -> start_group(Group, Build, Config)
    end.

start_group(Group, {Dir, Cmd, RelDir, Bin}, Config) ->
    Out = os:cmd("cd " ++ Dir ++ " && " ++ Cmd ++ " 2>&1; echo rc=$?"),
    ct:log("build ~s:~n~s", [Group, Out]),
    case lists:suffix("rc=0\n", Out) of
        false -> ct:fail({release_build_failed, Group});
        true -> ok
    end,
    Ports = [caravan_test_peer:free_port() || _ <- [1, 2, 3]],
    Records = lists:append([["hello.service SRV 1 1 " ++ integer_to_list(P) ++ " h" ++
                                 integer_to_list(P) ++ ".node.dc1",
                             "h" ++ integer_to_list(P) ++ ".node.dc1 A 127.0.0.1"] || P <- Ports]),
    Bind = caravan_test_bind:start(filename:join(?config(priv_dir, Config), "bind-" ++ atom_to_list(Group)),
                                   #{records => Records}),
    Instances = [begin
                     Copy = filename:join(?config(priv_dir, Config),
                                          atom_to_list(Group) ++ "-" ++ integer_to_list(P)),
                     "" = os:cmd("cp -r " ++ filename:join(Dir, RelDir) ++ " " ++ Copy),
                     #{port => P, bin => filename:join([Copy, "bin", Bin]), dir => Copy,
                       env => env(P, Copy, caravan_test_bind:server(Bind))}
                 end || P <- Ports],
    [begin
         R = run(I, "daemon"),
         ct:log("daemon ~b: ~s", [maps:get(port, I), R])
     end || I <- Instances],
    [{bind, Bind}, {instances, Instances} | Config].

end_per_group(quick_start, _Config) ->
    ok;
end_per_group(_Group, Config) ->
    case ?config(instances, Config) of
        undefined -> ok;
        Instances ->
            %% The three stops side by side (relx's waits for its node to
            %% exit, about 3 s each), then until no node listens any more.
            Self = self(),
            Pids = [spawn_link(fun() -> Self ! {self(), run(I, "stop")} end) || I <- Instances],
            [receive {P, Out} -> ct:log("stop ~b: ~s", [maps:get(port, I), Out])
             after 60000 -> ct:log("stop ~b: no answer in 60 s", [maps:get(port, I)])
             end || {P, I} <- lists:zip(Pids, Instances)],
            [wait_unlistened(maps:get(port, I), 250) || I <- Instances],
            caravan_test_bind:stop(?config(bind, Config))
    end,
    ok.

%% Polls every 20 ms, at most N times, until nothing accepts on Port.
-spec wait_unlistened(inet:port_number(), non_neg_integer()) -> ok.
wait_unlistened(Port, 0) ->
    ct:log("port ~b still listening after its stop", [Port]);
wait_unlistened(Port, N) ->
    case gen_tcp:connect({127, 0, 0, 1}, Port, [], 1000) of
        {ok, S} -> gen_tcp:close(S), timer:sleep(20), wait_unlistened(Port, N - 1);
        {error, _} -> ok
    end.

%% Every variable either release reads: relx's (NODE_NAME, RELEASE_COOKIE
%% through vm.args.src and sys.config.src, ERL_DIST_PORT for erl_call) and
%% Mix's (NODE_NAME through env.sh, RELEASE_COOKIE, RELEASE_TMP).
env(Port, Dir, DnsServer) ->
    P = integer_to_list(Port),
    lists:flatten(["NODE_NAME=hello-", P, "@127.0.0.1 ERL_DIST_PORT=", P,
                   " RELEASE_COOKIE=", ?COOKIE, " DNS_SERVER=", DnsServer,
                   " RELEASE_TMP=", Dir, "/tmp RELX_OUT_FILE_PATH=", Dir, " "]).

run(#{env := Env, bin := Bin}, Args) ->
    os:cmd(Env ++ Bin ++ " " ++ Args ++ " 2>&1").

%% Runs an interactive command in a pseudo-terminal (a remote shell needs
%% one), waits for its prompt, types Input, waits for the line Input prints
%% (Expect), then leaves with ^G q; returns what it printed. Each wait is
%% bounded; none is a fixed sleep.
run_tty(#{env := Env, bin := Bin}, Args, Input, Expect) ->
    Cmd = lists:flatten(io_lib:format("env ~s timeout 60 script -qfec '~s ~s' /dev/null 2>&1",
                                      [Env, Bin, Args])),
    Port = open_port({spawn, Cmd}, [binary, stream, exit_status]),
    Prompted = read_until(Port, fun(Out) -> re:run(Out, "[0-9]+> *$") =/= nomatch end,
                          <<>>, 30000),
    Answered = send_and_read(Port, [Input, "\n"],
                             fun(Out) -> binary:match(Out, list_to_binary(Expect)) =/= nomatch
                             end, Prompted, 15000),
    Out = send_and_read(Port, "\007q\n", fun(_) -> false end, Answered, 10000),
    binary_to_list(binary:replace(Out, <<"\r">>, <<>>, [global])).

%% Types Input unless the command has already exited (its output then says why).
send_and_read(Port, Input, Done, Acc, Ms) ->
    case erlang:port_info(Port) of
        undefined -> Acc;
        _ ->
            port_command(Port, Input),
            read_until(Port, Done, Acc, Ms)
    end.

%% Reads Port's output until Done(AllSoFar) or the port exits or Ms pass.
read_until(Port, Done, Acc, Ms) ->
    Deadline = erlang:monotonic_time(millisecond) + Ms,
    read_loop(Port, Done, Acc, Deadline).

read_loop(Port, Done, Acc, Deadline) ->
    case Done(Acc) of
        true -> Acc;
        false ->
            Left = max(0, Deadline - erlang:monotonic_time(millisecond)),
            receive
                {Port, {data, D}} -> read_loop(Port, Done, <<Acc/binary, D/binary>>, Deadline);
                {Port, {exit_status, _}} -> Acc
            after Left ->
                    Acc
            end
    end.

names(Instances) ->
    lists:sort(["hello-" ++ integer_to_list(maps:get(port, I)) ++ "@127.0.0.1" || I <- Instances]).

wait_cluster(Fun, Instances) ->
    caravan_test_peer:wait_until(
      fun() ->
              lists:all(fun(I) ->
                                Out = Fun(I),
                                lists:all(fun(N) -> string:find(Out, N) =/= nomatch end,
                                          names(Instances) -- [me(I)])
                        end, Instances)
      end, 30000).

me(I) -> "hello-" ++ integer_to_list(maps:get(port, I)) ++ "@127.0.0.1".

%%% relx

relx_cluster_forms(Config) ->
    Instances = ?config(instances, Config),
    wait_cluster(fun(I) -> run(I, "rpc erlang nodes") end, Instances),
    [I1 | _] = Instances,
    ct:log("rpc erlang nodes on ~s: ~s", [me(I1), run(I1, "rpc erlang nodes")]),
    ?assertEqual("pong\n", run(I1, "ping")),
    ok = caravan_test_peer:assert_no_epmd().

relx_rpc_and_remote_console(Config) ->
    [I1 | _] = Instances = ?config(instances, Config),
    Out = run_tty(I1, "remote_console",
                  "io:format(\"REMOTE-~s-~b~n\", [node(), length(nodes())]).",
                  "REMOTE-" ++ me(I1)),
    ct:log("remote_console:~n~s", [Out]),
    ?assertNotEqual(nomatch, string:find(Out, "REMOTE-" ++ me(I1) ++ "-" ++
                                              integer_to_list(length(Instances) - 1))),
    ok = caravan_test_peer:assert_no_epmd().

%%% mix

mix_cluster_forms(Config) ->
    Instances = ?config(instances, Config),
    wait_cluster(fun(I) -> run(I, "rpc 'IO.inspect(Node.list())'") end, Instances),
    ok = caravan_test_peer:assert_no_epmd().

mix_rpc_and_remote(Config) ->
    [I1 | _] = Instances = ?config(instances, Config),
    ?assertEqual(me(I1), string:trim(run(I1, "rpc 'IO.puts(node())'"))),
    Out = run_tty(I1, "remote", "IO.puts(\"REMOTE-#{node()}-#{length(Node.list())}\")",
                  "REMOTE-" ++ me(I1)),
    ct:log("remote:~n~s", [Out]),
    ?assertNotEqual(nomatch, string:find(Out, "REMOTE-" ++ me(I1) ++ "-" ++
                                              integer_to_list(length(Instances) - 1))),
    ok = caravan_test_peer:assert_no_epmd().

%%% Quick start: the README's own text, followed literally

%% A new rebar3 release built from the commands and files of README.md's
%% "Quick start" / "rebar3" (not from examples/): two nodes connect with no
%% epmd, and `rebar3 release' prints no caravan "Source code not found".
quick_start_rebar3(Config) ->
    [P1, P2] = free_ports(2),
    Rel = filename:join([?config(priv_dir, Config), "qs-rebar3", "hello",
                         "_build/default/rel/hello/bin/hello"]),
    Stop = fun(P) -> os:cmd(io_lib:format("NODE_NAME=hello-~b@127.0.0.1 ERL_DIST_PORT=~b "
                                          "RELEASE_COOKIE=change-me ~s stop 2>&1", [P, P, Rel]))
           end,
    try quick_start("rebar3", [{"4401", P1}, {"4402", P2}], Config) of
        {Out, Script} ->
            ct:log("script:~n~s~noutput:~n~s", [Script, Out]),
            ?assertEqual(nomatch, string:find(Out, "Source code not found")),
            ?assertNotEqual(nomatch, string:find(Out, io_lib:format("['hello-~b@127.0.0.1']",
                                                                    [P1])))
    after
        ct:log("stops: ~p", [[Stop(P) || P <- [P1, P2]]])
    end,
    ok = caravan_test_peer:assert_no_epmd().

%% The same for "Quick start" / "Mix": a Mix release, and `mix run' with -pa.
quick_start_mix(Config) ->
    case os:find_executable("mix") of
        false -> {skip, "mix is not installed (make deps installs Debian's elixir)"};
        _ -> quick_start_mix_run(Config)
    end.

quick_start_mix_run(Config) ->
    [P1, P2, P3] = free_ports(3),
    Rel = filename:join([?config(priv_dir, Config), "qs-Mix", "hello_ex",
                         "_build/prod/rel/hello_ex/bin/hello_ex"]),
    Stop = fun(P) -> os:cmd(io_lib:format("NODE_NAME=hello_ex-~b@127.0.0.1 "
                                          "RELEASE_COOKIE=change-me ~s stop 2>&1", [P, Rel]))
           end,
    try quick_start("Mix", [{"4501", P1}, {"4502", P2}, {"4503", P3}], Config) of
        {Out, Script} ->
            ct:log("script:~n~s~noutput:~n~s", [Script, Out]),
            ?assertNotEqual(nomatch, string:find(Out, io_lib:format("[:\"hello_ex-~b@127.0.0.1\"]",
                                                                    [P1]))),
            ?assertNotEqual(nomatch, string:find(Out, io_lib:format("hello_ex-~b@127.0.0.1", [P3])))
    after
        ct:log("stops: ~p", [[Stop(P) || P <- [P1, P2]]])
    end,
    ok = caravan_test_peer:assert_no_epmd().

free_ports(N) ->
    Ports = lists:usort([caravan_test_peer:free_port() || _ <- lists:seq(1, N)]),
    case length(Ports) of
        N -> Ports;
        _ -> free_ports(N)
    end.

%% Turns the subsection of README.md's "Quick start" into one shell script:
%% ```sh blocks are commands, run in order in one shell; a block whose info
%% string names a file after the language (```erlang rebar.config) is that
%% file's content. Runs it in a new directory holding `caravan' (this
%% project), as the README says, and returns its output.
quick_start(Subsection, Ports, Config) ->
    {ok, Readme} = file:read_file(filename:join(?config(project, Config), "README.md")),
    [_, AfterQs] = binary:split(Readme, <<"\n## Quick start\n">>),
    [Qs | _] = binary:split(AfterQs, <<"\n## ">>),
    [_, AfterSub] = binary:split(Qs, <<"\n### ", (list_to_binary(Subsection))/binary, "\n">>),
    [Sub | _] = binary:split(AfterSub, <<"\n### ">>),
    {match, Blocks} = re:run(Sub, "```([a-z]*)([^\n]*)\n(.*?)\n```", [dotall, global,
                                                                   {capture, all_but_first, list}]),
    Steps = [case string:trim(File) of
                 "" when Lang =:= "sh" -> Body;
                 "" -> error({block_without_file, Lang, Body});
                 Path -> ["mkdir -p \"$(dirname ", Path, ")\"\ncat > ", Path,
                          " <<'CARAVAN_QUICK_START'\n", Body, "\nCARAVAN_QUICK_START"]
             end || [Lang, File, Body] <- Blocks],
    Script0 = lists:flatten(lists:join("\n", ["set -ex" | Steps])) ++ "\n",
    Script = lists:foldl(fun({From, To}, S) -> string:replace(S, From, integer_to_list(To), all)
                         end, Script0, Ports),
    Dir = filename:join(?config(priv_dir, Config), "qs-" ++ Subsection),
    ok = filelib:ensure_path(Dir),
    ok = file:make_symlink(?config(project, Config), filename:join(Dir, "caravan")),
    ScriptFile = filename:join(Dir, "quick_start.sh"),
    ok = file:write_file(ScriptFile, Script),
    Out = os:cmd("cd " ++ Dir ++ " && timeout 600 sh " ++ ScriptFile ++ " 2>&1; echo rc=$?"),
    ?assertMatch({match, _}, re:run(Out, "rc=0\n$"), Out),
    {Out, Script}.

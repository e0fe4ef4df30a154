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
         mix_cluster_forms/1, mix_rpc_and_remote/1]).

-define(COOKIE, "caravan-release-test").

suite() ->
    [{timetrap, {minutes, 5}}].

all() ->
    [{group, relx}, {group, mix}].

groups() ->
    [{relx, [sequence], [relx_cluster_forms, relx_rpc_and_remote_console]},
     {mix, [sequence], [mix_cluster_forms, mix_rpc_and_remote]}].

init_per_suite(Config) ->
    ok = caravan_test_peer:assert_no_epmd(),
    %% This file is test/caravan_release_SUITE.erl in the project.
    [{project, filename:dirname(filename:dirname(?FILE))} | Config].

end_per_suite(_Config) ->
    ok = caravan_test_peer:assert_no_epmd().

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

end_per_group(_Group, Config) ->
    case ?config(instances, Config) of
        undefined -> ok;
        Instances ->
            [ct:log("stop ~b: ~s", [maps:get(port, I), run(I, "stop")]) || I <- Instances],
            timer:sleep(1000),
            caravan_test_bind:stop(?config(bind, Config))
    end,
    ok.

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
%% one), types Input, and returns what it printed.
run_tty(#{env := Env, bin := Bin}, Args, Input) ->
    Cmd = lists:flatten(io_lib:format(
            "(sleep 4; printf '%s\\n' '~s'; sleep 3; printf '\\007q\\n'; sleep 1) | ~s timeout 30 "
            "script -qfec '~s ~s' /dev/null 2>&1 | tr -d '\\r'", [Input, Env, Bin, Args])),
    os:cmd(Cmd).

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
                  "io:format(\"REMOTE-~s-~b~n\", [node(), length(nodes())])."),
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
    Out = run_tty(I1, "remote", "IO.puts(\"REMOTE-#{node()}-#{length(Node.list())}\")"),
    ct:log("remote:~n~s", [Out]),
    ?assertNotEqual(nomatch, string:find(Out, "REMOTE-" ++ me(I1) ++ "-" ++
                                              integer_to_list(length(Instances) - 1))),
    ok = caravan_test_peer:assert_no_epmd().

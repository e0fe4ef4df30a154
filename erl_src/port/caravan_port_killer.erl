%%% @doc Killing a hung or broken `caravan_port' program for its owner
%%% (caravan_port), which never waits for it: which program kills, the
%%% killers running, and the attempts again when a killer cannot start or
%%% does not exit. Its messages (`{Port, {exit_status, _}}', `{timeout, _,
%%% {killer_timeout, Port}}', `{kill, OsPid, Attempt}') come to the owner,
%%% which hands them to handle/2.
-module(caravan_port_killer).

-include_lib("kernel/include/logger.hrl").

-export([new/2]).
-export([kill/2]).
-export([handle/2]).

-export_type([kills/0]).

%% Killing a hung program: `caravan_port kill PID' (see port_src/cli_kill.c),
%% by absolute path, so that no `kill' on the PATH is needed. A killer that
%% cannot be started (out of file descriptors, out of processes) is tried
%% again after 50 ms, doubling up to 5 s, at most KILL_ATTEMPTS times (a
%% good 4 minutes); one that has not exited after KILL_WAIT_MS is closed and
%% counts as a failed attempt.
-define(KILL_ATTEMPTS, 60).
-define(KILL_RETRY_MIN_MS, 50).
-define(KILL_RETRY_MAX_MS, 5000).
-define(KILL_WAIT_MS, 5000).

%% The program that kills (`Killer kill PID'), the owner's program (for
%% log lines), and the killers running: their port, the pid they kill,
%% and which attempt this is.
-record(kills, {killer :: file:filename(),
                program :: file:filename(),
                running = #{} :: #{port() => {non_neg_integer(), pos_integer()}}}).
-opaque kills() :: #kills{}.

%% @doc No killer running yet, for an owner started with Options and
%% running Program.
%%
%% The program that kills: caravan's own priv/caravan_port (the owner's
%% program may be another, a wrapper that knows no `kill' mode), else the
%% owner's program when that is the one a release configures.
%% No filename:absname/1 here: it asks file_server_2, which does not exist
%% yet when kernel starts caravan_epmd (the path is the code path's,
%% absolute in a release).
-spec new(caravan_port:options(), file:filename()) -> kills().
new(Options, Program) ->
    Killer = case maps:find(killer, Options) of
                 {ok, K} -> K;
                 error ->
                     case caravan_port:default_program() of
                         {ok, P} -> P;
                         {error, no_priv_dir} -> maps:get(program, Options, "caravan_port")
                     end
             end,
    #kills{killer = Killer, program = Program}.

%% @doc SIGKILL to OsPid (nothing for none), without waiting.
-spec kill(non_neg_integer() | undefined, kills()) -> kills().
kill(OsPid, Kills) ->
    kill(OsPid, 1, Kills).

%% @doc A killer's message: its exit (logged unless 0), its time out (closed,
%% and tried again), or the time for another attempt. Anything else (the
%% exit of a program already killed, a killer that exited in time) changes
%% nothing.
-spec handle(term(), kills()) -> kills().
handle({Killer, {exit_status, Status}}, #kills{running = Running} = Kills)
  when is_map_key(Killer, Running) ->
    {{OsPid, _}, Rest} = maps:take(Killer, Running),
    case Status of
        0 -> ok;
        _ -> ?LOG_WARNING("caravan_port: killing os pid ~p failed (exit status ~p); see the "
                          "VM's stderr", [OsPid, Status])
    end,
    Kills#kills{running = Rest};
handle({timeout, _, {killer_timeout, Killer}}, #kills{running = Running} = Kills)
  when is_map_key(Killer, Running) ->
    {{OsPid, Attempt}, Rest} = maps:take(Killer, Running),
    try port_close(Killer) of
        true -> ok
    catch
        error:badarg -> ok
    end,
    kill_again(OsPid, Attempt, killer_hung, Kills#kills{running = Rest});
handle({kill, OsPid, Attempt}, Kills) ->
    kill(OsPid, Attempt, Kills);
handle(_, Kills) ->
    Kills.

%% SIGKILL to OsPid, without waiting: a killer is started and its exit
%% comes later as a message. Starting one may fail (emfile when the VM is
%% out of file descriptors, eagain): then it is tried again later, and the
%% owner goes on. Only when caravan's own program cannot be found at all is
%% a `kill' on the PATH used.
-spec kill(non_neg_integer() | undefined, pos_integer(), kills()) -> kills().
kill(undefined, _Attempt, Kills) ->
    Kills;
kill(OsPid, Attempt, #kills{killer = Killer, running = Running} = Kills) ->
    Commands = [{Killer, ["kill", integer_to_list(OsPid)]}
                | case os:find_executable("kill") of
                      false -> [];
                      Kill -> [{Kill, ["-KILL", integer_to_list(OsPid)]}]
                  end],
    case spawn_killer(Commands) of
        {ok, Port} ->
            _ = erlang:start_timer(?KILL_WAIT_MS, self(), {killer_timeout, Port}),
            Kills#kills{running = Running#{Port => {OsPid, Attempt}}};
        {error, Reason} ->
            kill_again(OsPid, Attempt, Reason, Kills)
    end.

-spec spawn_killer([{file:filename(), [string()]}]) -> {ok, port()} | {error, term()}.
spawn_killer([{Exe, Args} | More]) ->
    try open_port({spawn_executable, Exe}, [{args, Args}, exit_status, in]) of
        Port -> {ok, Port}
    catch
        error:Reason when More =:= []; (Reason =/= enoent andalso Reason =/= eacces) ->
            {error, Reason};
        error:_ ->
            spawn_killer(More)
    end.

-spec kill_again(non_neg_integer(), pos_integer(), term(), kills()) -> kills().
kill_again(OsPid, Attempt, Reason, #kills{program = Program} = Kills)
  when Attempt >= ?KILL_ATTEMPTS ->
    ?LOG_ERROR("caravan_port: gave up killing ~ts (os pid ~p) after ~b attempts: ~0p",
               [Program, OsPid, Attempt, Reason]),
    Kills;
kill_again(OsPid, Attempt, Reason, #kills{program = Program} = Kills) ->
    case Attempt of
        1 -> ?LOG_WARNING("caravan_port: cannot kill ~ts (os pid ~p) yet: ~0p; trying again",
                          [Program, OsPid, Reason]);
        _ -> ok
    end,
    Delay = min(?KILL_RETRY_MAX_MS, ?KILL_RETRY_MIN_MS bsl min(Attempt - 1, 16)),
    _ = erlang:send_after(Delay, self(), {kill, OsPid, Attempt + 1}),
    Kills.

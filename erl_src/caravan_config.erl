%%% @doc Settings readable at any time, including at boot.
%%%
%%% caravan_epmd starts inside kernel, before any application environment is
%%% loaded, so settings come from `-caravan Key Value' on the command line
%%% (what also becomes the application environment later), then from the
%%% environment of a loaded caravan application, then from defaults.
-module(caravan_config).

-export([get/2]).
-export([default_port/0]).
-export([port_program/0]).

%% The port Caravan 1.0.1 and this project assume for names without digits.
-define(DEFAULT_PORT, 4370).

%% @doc A setting: command line first, then application env, then Default.
-spec get(Key :: atom(), Default :: term()) -> term().
get(Key, Default) ->
    case command_line(atom_to_list(Key)) of
        {ok, Value} -> Value;
        error -> application:get_env(caravan, Key, Default)
    end.

%% @doc The port of names that end in no digits: `default_port', 4370 unless set.
-spec default_port() -> 0..65535.
default_port() ->
    case get(default_port, ?DEFAULT_PORT) of
        P when is_integer(P), P >= 0, P =< 65535 -> P;
        _ -> ?DEFAULT_PORT
    end.

%% @doc Path of the C program: `port_program' if set, else the environment
%% variable CARAVAN_PORT_PROGRAM (how the sanitizer runs of the test suite
%% swap in an instrumented build), else caravan's priv dir.
-spec port_program() -> {ok, file:filename()} | {error, no_priv_dir}.
port_program() ->
    case get(port_program, undefined) of
        Path when is_list(Path), Path =/= [] -> {ok, Path};
        _ ->
            case os:getenv("CARAVAN_PORT_PROGRAM") of
                Env when is_list(Env), Env =/= "" -> {ok, Env};
                _ -> caravan_port:default_program()
            end
    end.

%% `-caravan default_port 4371' arrives as [["default_port", "4371"]]; values
%% are parsed as Erlang terms when they parse, as with application env flags.
command_line(Key) ->
    case init:get_argument(caravan) of
        {ok, Lists} ->
            case [V || [K, V | _] <- Lists, K =:= Key] of
                [] -> error;
                Values -> {ok, parse(lists:last(Values))}
            end;
        error ->
            error
    end.

parse(String) ->
    case erl_scan:string(String ++ ".") of
        {ok, Tokens, _} ->
            case erl_parse:parse_term(Tokens) of
                {ok, Term} -> Term;
                {error, _} -> String
            end;
        _ ->
            String
    end.

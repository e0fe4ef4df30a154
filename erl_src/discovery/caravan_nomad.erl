%%% @doc Nomad's native service discovery as a source: GET
%%% /v1/service/:service_name, every page of it, each registration named
%%% `Basename-PORT@ADDRESS'. Defaults follow Nomad's own CLI: NOMAD_ADDR
%%% (http://127.0.0.1:4646, or unix:///path for the task API socket),
%%% NOMAD_TOKEN, NOMAD_NAMESPACE, NOMAD_CACERT, NOMAD_CLIENT_CERT,
%%% NOMAD_CLIENT_KEY.
-module(caravan_nomad).

-export([discover/1]).
-export([query/2]).

-export_type([options/0]).

-type options() :: #{service := string() | binary(),
                     basename := string() | binary(),
                     namespace => string() | binary(),
                     per_page => pos_integer(),
                     max_members => pos_integer(),
                     _ => _}.

-define(ENV, #{url => {"NOMAD_ADDR", "http://127.0.0.1:4646"}, token => "NOMAD_TOKEN",
               ca_file => "NOMAD_CACERT", cert_file => "NOMAD_CLIENT_CERT",
               key_file => "NOMAD_CLIENT_KEY"}).
%% Pages followed at most: a lying next_token must not loop forever.
-define(MAX_PAGES, 1000).
%% caravan_catalog's default `timeout'.
-define(DEFAULT_TIMEOUT_MS, 10000).

-spec discover(options()) -> {ok, [node()]} | {error, caravan:error()}.
discover(Options) ->
    caravan_catalog:discover(?MODULE, Options).

%% @doc Every page; only the first blocks (a positive Index), the rest are
%% read at once. The answer carries the first page's index.
%%
%% IMPORTANT: each page is bounded by `max_bytes', but a server may send a
%% new X-Nomad-NextToken forever. The members of all pages are counted
%% against one `max_members' (caravan_options:max_members/1) as they arrive,
%% and the answer is `too_large' as soon as they pass it: what the caller
%% holds is at most that many members plus one page, however many pages
%% the server offers (it held every page of up to 1000, 32 MiB each).
-spec query(options(), non_neg_integer()) -> {ok, caravan_catalog:answer()} | {error, caravan:error()}.
query(#{service := Service} = Options, Index) ->
    Namespace = case maps:find(namespace, Options) of
                    {ok, N} -> [{namespace, N}];
                    error ->
                        case os:getenv("NOMAD_NAMESPACE") of
                            false -> [];
                            "" -> [];
                            N -> [{namespace, N}]
                        end
                end,
    PerPage = [{per_page, P} || {ok, P} <- [maps:find(per_page, Options)]],
    Extra = maps:from_list([{service, Service} | Namespace ++ PerPage]),
    pages(Options, Extra, Index, <<>>, {[], 0}, 1, undefined).

%% `timeout' bounds the whole listing, not each page (issue 18, attacker:
%% pages of 0.4 s each, each with a new token, held a discover with
%% timeout 1000 for minutes): the pages after the first share what remains
%% of it, counted from the first request (from the first answer when that
%% one blocks, as a watch's does, for up to its wait). A token the server
%% already gave is a loop, refused at once.
pages(_Options, _Extra, _Index, _Token, _Acc, Page, _First) when Page > ?MAX_PAGES ->
    {error, {bad_answer, <<"Nomad's pagination did not end after 1000 pages">>}};
pages(Options, Extra, Index, Token, Acc, 1, undefined) ->
    page(Options#{deadline => deadline(Options)}, Extra, Index, Token, Acc, 1, undefined);
pages(#{deadline := Deadline} = Options, Extra, Index, Token, Acc, Page, First) ->
    Timeout = maps:get(timeout, Options, ?DEFAULT_TIMEOUT_MS),
    Left = Deadline - erlang:monotonic_time(millisecond),
    Seen = maps:get(tokens, Options, #{}),
    if
        is_map_key(Token, Seen) ->
            {error, {bad_answer, unicode:characters_to_binary(
                                   io_lib:format("Nomad's page ~b repeats an earlier "
                                                 "X-Nomad-NextToken: a loop", [Page - 1]))}};
        Left < 1 ->
            {error, {timeout, unicode:characters_to_binary(
                                io_lib:format("Nomad's listing did not end within ~b ms "
                                              "(timeout) after ~b pages", [Timeout, Page - 1]))}};
        true ->
            page(Options#{tokens => Seen#{Token => true}}, Extra, Index, Token, Acc, Page, First)
    end.

deadline(Options) ->
    erlang:monotonic_time(millisecond) + maps:get(timeout, Options, ?DEFAULT_TIMEOUT_MS).

page(Options, Extra, Index, Token, {Acc, Count}, Page, First) ->
    Args = case Token of
               <<>> -> Extra;
               _ -> Extra#{next_token => Token}
           end,
    Call = case First of
               undefined -> maps:without([deadline, tokens], Options);
               _ -> (maps:without([deadline, tokens], Options))#{
                      timeout => max(1, maps:get(deadline, Options)
                                     - erlang:monotonic_time(millisecond))}
           end,
    case caravan_catalog:call(nomad_services, Call, ?ENV,
                           {Args, case First of undefined -> Index; _ -> 0 end}) of
        {ok, #{index := I, next_token := Next, members := Members}} ->
            FirstIndex = case First of undefined -> I; _ -> First end,
            Total = Count + length(Members),
            Max = caravan_options:max_members(Options),
            if
                Total > Max ->
                    {error, {too_large, too_many(Max, Page)}};
                Next =:= <<>> ->
                    {ok, #{index => FirstIndex, next_token => <<>>,
                           members => lists:append(lists:reverse([Members | Acc]))}};
                true ->
                    %% A blocking first page: the rest get timeout from now.
                    Options1 = case Page =:= 1 andalso Index > 0 of
                                   true -> Options#{deadline => deadline(Options)};
                                   false -> Options
                               end,
                    pages(Options1, Extra, Index, Next, {[Members | Acc], Total}, Page + 1,
                          FirstIndex)
            end;
        {error, _} = Error ->
            Error
    end.

too_many(Max, Page) ->
    unicode:characters_to_binary(
      io_lib:format("Nomad's answer lists more than ~b members (max_members) by page ~b",
                    [Max, Page])).

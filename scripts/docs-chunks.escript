#!/usr/bin/env escript
%%! -noshell
%% Puts an EEP-48 "Docs" chunk into each of caravan's compiled modules, built
%% by edoc's chunk doclet (edoc_doclet_chunks + edoc_layout_chunks), so that
%% IEx's `h :caravan.discover`, Erlang's `h(caravan, discover)` and
%% ExUnit's `doctest Caravan.Epmd` find them wherever the beam files go (a
%% rebar3 build, a Mix path dependency, a release): the chunk travels inside
%% the .beam, where code:get_doc/1 and Code.fetch_docs/1 look first.
%%
%% Run by rebar.config's compile post_hook: `docs-chunks.escript SRC_DIR
%% EBIN...'. The first EBIN that exists is used. A module whose beam
%% already carries a Docs chunk is skipped (rebar3 rewrites a beam without
%% one when it recompiles it), so an unchanged build costs nothing.
%%
%% Elixir.* modules (Caravan 1.0.1's API) get their docs as text/markdown:
%% ExUnit's doctest reads examples from Markdown text only, and IEx renders
%% it. The erlang+html that edoc writes is turned into Markdown here; the
%% other modules keep edoc's application/erlang+html, which Erlang's shell
%% and IEx both render.
-mode(compile).

%% Never fails the build it runs in (a dependent's build least of all):
%% without edoc (Debian ships it apart, as erlang-edoc) or with a doc edoc
%% cannot read, it says so and the modules go without docs.
main([Src | Ebins]) ->
    case {[E || E <- Ebins, E =/= "", filelib:is_dir(E)],
          code:which(edoc_doclet_chunks)} of
        {_, non_existing} ->
            io:format("docs-chunks: edoc's chunk doclet is not installed (Debian: "
                      "erlang-edoc); caravan's modules go without docs~n");
        {[Ebin | _], _} ->
            run(Src, Ebin);
        {[], _} ->
            io:format("docs-chunks: no ebin among ~p; no docs built~n", [Ebins])
    end;
main(_) ->
    io:format("usage: docs-chunks.escript SRC_DIR EBIN...~n"),
    halt(2).

run(Src, Ebin) ->
    Todo = [{Beam, Mod} || Beam <- filelib:wildcard(filename:join(Ebin, "*.beam")),
                           Mod <- [list_to_atom(filename:basename(Beam, ".beam"))],
                           not has_docs(Beam)],
    Sources = maps:from_list([{list_to_atom(filename:basename(F, ".erl")), F}
                              || F <- filelib:wildcard(filename:join(Src, "**/*.erl"))]),
    Files = [{Beam, Mod, maps:get(Mod, Sources)} || {Beam, Mod} <- Todo,
                                                   maps:is_key(Mod, Sources)],
    Tmp = filename:join(Ebin, "../.docs-chunks"),
    _ = [try build(Beam, Mod, File, Tmp)
         catch Class:Why ->
                 io:format("docs-chunks: no docs for ~s: ~0p~n", [Mod, {Class, Why}])
         end || {Beam, Mod, File} <- Files],
    _ = file:del_dir_r(Tmp),
    ok.

has_docs(Beam) ->
    case beam_lib:chunks(Beam, ["Docs"], [allow_missing_chunks]) of
        {ok, {_, [{"Docs", missing_chunk}]}} -> false;
        {ok, {_, [{"Docs", _}]}} -> true;
        _ -> false
    end.

build(Beam, Mod, File, Tmp) ->
    ok = edoc:files([File], [{doclet, edoc_doclet_chunks}, {layout, edoc_layout_chunks},
                             {dir, Tmp}, {preprocess, true}, {report_missing_types, false},
                             {includes, [filename:dirname(File)]}]),
    Chunk = filename:join([Tmp, "chunks", atom_to_list(Mod) ++ ".chunk"]),
    {ok, Bin} = file:read_file(Chunk),
    {ok, {_, [{exports, Exports}]}} = beam_lib:chunks(Beam, [exports]),
    DocsV1 = exported(binary_to_term(Bin), Exports),
    Docs = case atom_to_list(Mod) of
               "Elixir." ++ _ -> term_to_binary(markdown(DocsV1), [compressed]);
               _ -> term_to_binary(DocsV1, [compressed])
           end,
    {ok, _, Chunks} = beam_lib:all_chunks(Beam),
    {ok, New} = beam_lib:build_module(Chunks ++ [{"Docs", Docs}]),
    file:write_file(Beam, New).

%% Only the functions a user can call (edoc lists internal ones too).
exported({docs_v1, Anno, Lang, Format, ModDoc, Meta, Docs}, Exports) ->
    {docs_v1, Anno, Lang, Format, ModDoc, Meta,
     [D || {{Kind, Name, Arity}, _, _, _, _} = D <- Docs,
           Kind =/= function orelse lists:member({Name, Arity}, Exports)]}.

%%% erlang+html -> Markdown, for the Elixir.* modules

markdown({docs_v1, Anno, Lang, _Format, ModDoc, Meta, Docs}) ->
    {docs_v1, Anno, Lang, <<"text/markdown">>, md_doc(ModDoc), Meta,
     [{Kna, A, Sig, md_doc(D), M} || {Kna, A, Sig, D, M} <- Docs]}.

md_doc(#{<<"en">> := Html}) ->
    #{<<"en">> => unicode:characters_to_binary(string:trim(blocks(Html)))};
md_doc(Other) ->
    Other.

%% Inline elements and text between blocks make a paragraph.
blocks(Html) when is_list(Html) -> paragraphs(Html, []);
blocks(Html) -> blocks([Html]).

paragraphs([], []) -> [];
paragraphs([], Run) -> [inline(lists:reverse(Run)), "\n\n"];
paragraphs([E | Rest], Run) ->
    case is_block(E) of
        true -> [paragraphs([], Run), block(E) | paragraphs(Rest, [])];
        false -> paragraphs(Rest, [E | Run])
    end.

is_block({T, _, _}) -> lists:member(T, [p, pre, ul, ol, dl, dt, dd, h1, h2, h3, h4, h5, h6,
                                        'div']);
is_block(_) -> false.

block({p, _, C}) -> [inline(C), "\n\n"];
block({pre, _, C}) ->
    %% Indented by four, whatever indentation the source comment had:
    %% doctest reads `iex>' lines in an indented block.
    Text = string:trim(unicode:characters_to_list(text(C)), trailing),
    Lines = [string:trim(L, trailing) || L <- string:split(Text, "\n", all)],
    Indent = lists:min([length(L) - length(string:trim(L, leading)) || L <- Lines, L =/= ""]),
    [[case L of "" -> ""; _ -> ["    ", lists:nthtail(Indent, L)] end, "\n"] || L <- Lines]
        ++ ["\n"];
block({ul, _, Items}) -> [["- ", string:trim(blocks(I)), "\n"] || {li, _, I} <- Items] ++ ["\n"];
block({ol, _, Items}) -> [["1. ", string:trim(blocks(I)), "\n"] || {li, _, I} <- Items] ++ ["\n"];
block({dl, _, Items}) -> [blocks(Items), "\n"];
block({dt, _, C}) -> ["- ", inline(C), ": "];
block({dd, _, C}) -> [string:trim(blocks(C)), "\n"];
block({H, _, C}) when H =:= h1; H =:= h2; H =:= h3; H =:= h4; H =:= h5; H =:= h6 ->
    ["## ", inline(C), "\n\n"];
block({'div', _, C}) -> blocks(C);
block({_, _, C}) -> [inline(C), "\n\n"].

inline(C) when is_list(C) -> [inline(E) || E <- C];
inline({code, _, C}) -> ["`", text(C), "`"];
inline({em, _, C}) -> ["*", inline(C), "*"];
inline({i, _, C}) -> ["*", inline(C), "*"];
inline({strong, _, C}) -> ["**", inline(C), "**"];
inline({b, _, C}) -> ["**", inline(C), "**"];
inline({a, _, C}) -> inline(C);
inline({br, _, _}) -> "\n";
inline({_, _, C}) -> inline(C);
inline(Text) when is_binary(Text) -> Text.

text(C) when is_list(C) -> [text(E) || E <- C];
text({_, _, C}) -> text(C);
text(Text) when is_binary(Text) -> Text.

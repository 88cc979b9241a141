-- atlas-ls for Neovim 0.11+. The README's "Neovim" section shows this file; tests/atlas_ls/test_neovim.py runs it.
vim.lsp.config('atlas', {
  -- Or { '/path/to/venv/bin/python', '-m', 'atlas_ls' }.
  cmd = { 'atlas-ls' },
  filetypes = { 'python' },
  root_markers = { 'pyproject.toml', 'setup.py', 'setup.cfg', '.git' },
  -- Server settings: the names `atlas-ls config schema` prints, without "atlas." (snake_case or camelCase).
  -- Only what you set here outranks [tool.atlas] in the project's pyproject.toml. For example:
  -- init_options = { model = 'qwen2.5-coder-1.5b', n_threads = 4 },
  handlers = {
    -- The model and Lens state, for a statusline: %{get(g:, 'atlas_status', {})->get('model', '')}
    ['atlas/status'] = function(_, status)
      vim.g.atlas_status = status
    end,
  },
})
vim.lsp.enable('atlas')

-- :AtlasSolve solves the stub function under the cursor (same as picking "Solve with ATLAS" from
-- vim.lsp.buf.code_action()); :AtlasCancel stops running solves (Neovim has no button to cancel a progress).
vim.api.nvim_create_user_command('AtlasSolve', function()
  vim.lsp.buf.code_action({
    filter = function(action) return action.title == 'Solve with ATLAS' end,
    apply = true,
  })
end, { desc = 'Solve the stub function under the cursor with ATLAS' })

vim.api.nvim_create_user_command('AtlasCancel', function()
  for _, client in ipairs(vim.lsp.get_clients({ name = 'atlas' })) do
    client:exec_cmd({ title = 'Cancel ATLAS', command = 'atlas.cancel' })
  end
end, { desc = 'Cancel running ATLAS solves' })

-- Show the solve's phases (routing, generating i/k, testing j/k, ...) in the message area.
vim.api.nvim_create_autocmd('LspProgress', {
  callback = function(event)
    local client = vim.lsp.get_client_by_id(event.data.client_id)
    local value = event.data.params.value
    if client and client.name == 'atlas' and type(value) == 'table' then
      vim.api.nvim_echo({ { 'ATLAS: ' .. (value.message or value.title or value.kind) } }, false, {})
    end
  end,
})

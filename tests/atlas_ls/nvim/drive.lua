-- Drives a headless Neovim for tests/atlas_ls/test_neovim.py, after init.lua has set atlas-ls up:
--   nvim --headless -u init.lua -l drive.lua SPEC.json
-- SPEC: {cmd, init_options, file, stub_line, plain_line, solve, cancel, timeout_ms, result_path} (lines 1-based).
-- Opens the file, waits for atlas-ls to attach, lists the code actions on the stub and on a plain line; with
-- `solve` runs :AtlasSolve (the config's own command) and waits for the server's edit; with `cancel` runs
-- :AtlasSolve, then :AtlasCancel once the model is generating. Writes what it saw as JSON.
local spec = vim.json.decode(table.concat(vim.fn.readfile(arg[1]), '\n'))
local result = { progress = {}, messages = {}, logs = {}, notifications = {} }
local started_at = vim.uv.hrtime()

-- Neovim's own complaints ("No code actions available", an unknown command) arrive through vim.notify.
local notify = vim.notify
vim.notify = function(message, level, opts)
  table.insert(result.notifications, message)
  return notify(message, level, opts)
end

-- Test-only overrides: how to start this checkout's server, and small budgets.
vim.lsp.config('atlas', { cmd = spec.cmd, init_options = spec.init_options })

local function record(list, handler_name)
  local default = vim.lsp.handlers[handler_name]
  vim.lsp.handlers[handler_name] = function(err, params, ctx, config)
    table.insert(list, params.message)
    return default(err, params, ctx, config)
  end
end
record(result.messages, 'window/showMessage')
record(result.logs, 'window/logMessage')

vim.api.nvim_create_autocmd('LspProgress', {
  callback = function(event)
    local value = event.data.params.value
    if type(value) == 'table' then
      local ms = math.floor((vim.uv.hrtime() - started_at) / 1e6)
      table.insert(result.progress, { kind = value.kind, title = value.title, message = value.message, ms = ms })
    end
  end,
})

local function lines(bufnr)
  return vim.api.nvim_buf_get_lines(bufnr, 0, -1, false)
end

local function code_actions(client, bufnr, line)
  vim.api.nvim_win_set_cursor(0, { line, 4 })
  local params = vim.lsp.util.make_range_params(0, client.offset_encoding)
  params.context = { diagnostics = {}, triggerKind = 1 }
  local started = vim.uv.hrtime()
  local response, err = client:request_sync('textDocument/codeAction', params, 10000, bufnr)
  local elapsed_ms = (vim.uv.hrtime() - started) / 1e6
  if not response then
    return { error = tostring(err), elapsed_ms = elapsed_ms }
  end
  local actions = {}
  for _, action in ipairs(response.result or {}) do
    table.insert(actions, { title = action.title, kind = action.kind })
  end
  return { actions = actions, error = response.err and response.err.message or nil, elapsed_ms = elapsed_ms }
end

local function offers_solve(listing)
  for _, action in ipairs(listing.actions or {}) do
    if action.title == 'Solve with ATLAS' then
      return true
    end
  end
  return false
end

local function progress_ended()
  local last = result.progress[#result.progress]
  return last ~= nil and last.kind == 'end'
end

local function solve(bufnr)
  local before = table.concat(lines(bufnr), '\n')
  local function changed()
    return table.concat(lines(bufnr), '\n') ~= before
  end
  vim.api.nvim_win_set_cursor(0, { spec.stub_line, 4 })
  vim.cmd('AtlasSolve')
  -- Until the edit arrives, or the solve's progress ends without one (a failure the messages explain).
  vim.wait(spec.timeout_ms, function() return changed() or progress_ended() end, 100)
  -- The edit and the end of the progress are separate messages: give the other one a moment.
  vim.wait(5000, function() return changed() and progress_ended() end, 50)
  result.solved = changed()
  vim.cmd('silent write')
  -- The status notification that counts the solve out follows the progress.
  vim.wait(5000, function() return vim.g.atlas_status and vim.g.atlas_status.solving == 0 end, 50)
end

local function generating()
  for _, event in ipairs(result.progress) do
    if (event.message or ''):match('^generating') then
      return true
    end
  end
  return false
end

-- Start a solve, and once the model is generating, :AtlasCancel it; the buffer must stay as it was.
local function solve_then_cancel(bufnr)
  local before = table.concat(lines(bufnr), '\n')
  vim.api.nvim_win_set_cursor(0, { spec.stub_line, 4 })
  vim.cmd('AtlasSolve')
  result.was_generating = vim.wait(spec.timeout_ms, function() return generating() or progress_ended() end, 50)
    and generating()
  vim.cmd('AtlasCancel')
  result.cancel_ended = vim.wait(spec.timeout_ms, progress_ended, 50)
  -- An edit racing the cancellation would land right after the end of the progress.
  vim.wait(1000, function() return false end, 50)
  result.unchanged = table.concat(lines(bufnr), '\n') == before
end

local function run()
  vim.cmd.edit(vim.fn.fnameescape(spec.file))
  local bufnr = vim.api.nvim_get_current_buf()
  result.filetype = vim.bo[bufnr].filetype
  result.attached = vim.wait(spec.timeout_ms, function()
    local clients = vim.lsp.get_clients({ bufnr = bufnr, name = 'atlas' })
    return #clients > 0 and clients[1].initialized
  end, 50)
  if not result.attached then
    return
  end
  local client = vim.lsp.get_clients({ bufnr = bufnr, name = 'atlas' })[1]
  result.server_name = client.server_info and client.server_info.name
  result.root_dir = client.root_dir
  result.on_stub = code_actions(client, bufnr, spec.stub_line)
  result.on_plain_line = code_actions(client, bufnr, spec.plain_line)
  if spec.solve and offers_solve(result.on_stub) then
    solve(bufnr)
  elseif spec.cancel and offers_solve(result.on_stub) then
    solve_then_cancel(bufnr)
  end
  result.lines = lines(bufnr)
  result.status = vim.g.atlas_status
  client:stop()
  result.server_stopped = vim.wait(10000, function() return client:is_stopped() end, 50)
end

local ok, err = pcall(run)
if not ok then
  result.error = tostring(err)
end
vim.fn.writefile({ vim.json.encode(result) }, spec.result_path)
